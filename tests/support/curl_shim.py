"""`curl` for running the documentation's examples: each request it is asked to send is recorded
(method, URL, status) in the JSON-lines file $CURL_RECORD, then sent by the real curl
($CURL_REAL, unchanged arguments plus -D to read the status) or, where curl is not installed
($CURL_REAL empty), by httpx from the parsed arguments. Only the options the examples use are
understood; any other is an error (exit 2), so an example never passes by being misread."""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import httpx

FLAGS = {"-s", "--silent", "-S", "--show-error", "-sS", "-Ss", "-i", "--include"}
WITH_VALUE = {
    "-X": "method",
    "--request": "method",
    "-H": "header",
    "--header": "header",
    "-d": "data",
    "--data": "data",
    "--data-raw": "data",
    "--data-binary": "data",
}


class Unsupported(ValueError):
    pass


@dataclass
class CurlRequest:
    url: str = ""
    method: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    include: bool = False

    @property
    def effective_method(self) -> str:
        return self.method or ("POST" if self.data else "GET")


def parse(argv: list[str]) -> CurlRequest:
    request = CurlRequest()
    arguments = iter(argv)
    for argument in arguments:
        if argument in FLAGS:
            request.include = request.include or argument in ("-i", "--include")
        elif argument in WITH_VALUE:
            value = next(arguments, None)
            if value is None:
                raise Unsupported(f"{argument} needs a value")
            kind = WITH_VALUE[argument]
            if kind == "method":
                request.method = value
            elif kind == "header":
                name, _, header_value = value.partition(":")
                request.headers.append((name.strip(), header_value.strip()))
            else:
                if value.startswith("@"):
                    raise Unsupported(f"{argument} @file is not supported")
                request.data.append(value)
        elif argument.startswith("-"):
            raise Unsupported(f"option {argument} is not supported")
        elif request.url:
            raise Unsupported(f"a second URL {argument!r}")
        else:
            request.url = argument
    if not request.url:
        raise Unsupported("no URL")
    return request


def send_with_httpx(request: CurlRequest) -> int:
    headers = dict(request.headers)
    if request.data and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # as curl -d sends
    with httpx.Client(trust_env=False, timeout=30) as client:
        response = client.request(
            request.effective_method,
            request.url,
            headers=headers,
            content="&".join(request.data).encode() if request.data else None,
        )
    if request.include:
        sys.stdout.write(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n")
        for name, value in response.headers.items():
            sys.stdout.write(f"{name}: {value}\r\n")
        sys.stdout.write("\r\n")
    sys.stdout.write(response.text)
    return response.status_code


def send_with_curl(real: str, argv: list[str]) -> int:
    with tempfile.NamedTemporaryFile("r") as dump:
        if subprocess.call([real, "-D", dump.name, *argv]) != 0:
            return 0
        statuses = [line for line in dump.read().splitlines() if line.startswith("HTTP/")]
    return int(statuses[-1].split()[1]) if statuses else 0


def main(argv: list[str]) -> int:
    try:
        request = parse(argv)
    except Unsupported as error:
        print(f"curl (tests/support/curl_shim.py): {error}", file=sys.stderr)
        return 2
    real = os.environ.get("CURL_REAL", "")
    status = send_with_curl(real, argv) if real else send_with_httpx(request)
    record = {"method": request.effective_method, "url": request.url, "status": status}
    with open(os.environ["CURL_RECORD"], "a") as records:
        records.write(json.dumps(record) + "\n")
    return 0 if status else 7


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
