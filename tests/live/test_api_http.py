"""api.http, request by request, against the running app: as a developer sends it from their
editor, with @functionKey and @masterKey set to the local durable host's keys and the port of
@baseUrl to the app's, as its comments ask, and @transactionId to the id the recurring job's
POST returned. Each request gets the answer its title promises."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.live.conftest import LiveApp

pytestmark = pytest.mark.live

API_HTTP = Path(__file__).resolve().parents[2] / "api.http"
VARIABLE = re.compile(r"^@(\w+)\s*=\s*(.*)$")
REFERENCE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
# REST Client's `{{$datetime iso8601 N m}}`: now plus N minutes.
DATETIME = re.compile(r"\$datetime iso8601 (\d+) m")
PROMISED_STATUS = re.compile(r"\b([2-5]\d\d)\b")


@dataclass(frozen=True)
class Request:
    title: str
    method: str
    url: str
    headers: dict[str, str]
    body: str


def parse(text: str) -> tuple[dict[str, str], list[Request]]:
    """The file's variables and its requests, in order (REST Client's format, as used there)."""
    variables: dict[str, str] = {}
    requests: list[Request] = []
    for block in re.split(r"^###", text, flags=re.MULTILINE):
        lines = block.split("\n")
        title = lines[0].strip() if requests or variables else ""
        rest = [line for line in lines[1:] if not line.startswith("#")]
        for line in block.split("\n"):
            match = VARIABLE.match(line)
            if match:
                variables[match[1]] = match[2].strip()
        request_lines = [line for line in rest if not VARIABLE.match(line)]
        while request_lines and not request_lines[0].strip():
            request_lines.pop(0)
        if not request_lines or " " not in request_lines[0]:
            continue
        method, url = request_lines[0].split(" ", 1)
        headers: dict[str, str] = {}
        index = 1
        while index < len(request_lines) and request_lines[index].strip():
            name, value = request_lines[index].split(":", 1)
            headers[name.strip()] = value.strip()
            index += 1
        body = "\n".join(request_lines[index:]).strip()
        requests.append(Request(title, method, url.strip(), headers, body))
    return variables, requests


def substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        minutes = DATETIME.fullmatch(name)
        if minutes:
            moment = datetime.now(UTC) + timedelta(minutes=int(minutes[1]))
            return moment.isoformat().replace("+00:00", "Z")
        return substitute(variables[name], variables)

    return REFERENCE.sub(value, text)


def test_every_request_of_api_http_gets_the_answer_its_title_promises(
    live_app: LiveApp,
) -> None:
    if live_app.local_host is None:
        pytest.skip("api.http is for the local durable host; the app under test is another")
    variables, requests = parse(API_HTTP.read_text())
    assert len(requests) >= 25, [request.title for request in requests]
    port = urlsplit(live_app.base_url).port
    variables["baseUrl"] = re.sub(r":\d+$", f":{port}", variables["baseUrl"])
    variables["functionKey"] = live_app.function_key
    variables["masterKey"] = live_app.admin_key
    answered: list[str] = []
    deleted = False
    with httpx.Client(trust_env=False, timeout=30) as client:
        for request in requests:
            sent = client.request(
                request.method,
                substitute(request.url, variables),
                headers={name: substitute(v, variables) for name, v in request.headers.items()},
                content=substitute(request.body, variables).encode() or None,
            )
            answered.append(f"{sent.status_code} {request.method} {request.title}")
            assert sent.status_code < 500, "\n".join(answered)
            assert sent.status_code not in (401, 403, 405), "\n".join(answered)
            # "…: 202 … (409 unless the job failed; 404 when unknown)": any status named.
            promised = {int(status) for status in PROMISED_STATUS.findall(request.title)}
            if promised:
                assert sent.status_code in promised, "\n".join(answered)
            elif request.title.startswith("Schedule"):
                assert sent.status_code == 202, "\n".join(answered)
                if "recurring" in request.title:
                    variables["transactionId"] = sent.json()["transaction_id"]
            elif "{{transactionId}}" in request.url:
                # The file deletes the job part way down: later requests for it are 404s.
                expected = (200, 202, 404) if deleted else (200, 202)
                assert sent.status_code in expected, "\n".join(answered)
            if request.method == "DELETE" and "{{transactionId}}" in request.url:
                deleted = True
