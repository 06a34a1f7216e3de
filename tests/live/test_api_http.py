"""api.http, top to bottom, against the app as scripts/run-local.sh runs it: as a developer
sends it from their editor, with @functionKey and @masterKey set to the local durable host's
keys, the port of @baseUrl to the app's and @receiverUrl to a receiver, as its comments ask.
Each request gets the answer its title promises, the jobs it schedules fire before the
requests that cancel or remove jobs, and those are all at the end, each marked."""

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.live.conftest import DeveloperApp, serving_receiver

pytestmark = pytest.mark.live

API_HTTP = Path(__file__).resolve().parents[2] / "api.http"
VARIABLE = re.compile(r"^@(\w+)\s*=\s*(.*)$")
NAME = re.compile(r"^#\s*@name\s+(\w+)\s*$")
REFERENCE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
# REST Client's `{{$datetime iso8601 N s|m}}`: now plus N seconds or minutes.
DATETIME = re.compile(r"\$datetime iso8601 (\d+) ([sm])")
# REST Client's request variables: `{{name.response.body.$.field}}`.
RESPONSE_FIELD = re.compile(r"(\w+)\.response\.body\.\$\.(\w+)")
PROMISED_STATUS = re.compile(r"\b([2-5]\d\d)\b")
DESTRUCTIVE = "DESTRUCTIVE:"
FIRE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Request:
    title: str
    name: str | None
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
        names = [match[1] for line in lines if (match := NAME.match(line))]
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
        requests.append(
            Request(title, names[0] if names else None, method, url.strip(), headers, body)
        )
    return variables, requests


def substitute(text: str, variables: dict[str, str], responses: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        moment = DATETIME.fullmatch(name)
        if moment:
            unit = {"s": "seconds", "m": "minutes"}[moment[2]]
            at = datetime.now(UTC) + timedelta(**{unit: int(moment[1])})
            return at.isoformat().replace("+00:00", "Z")
        field = RESPONSE_FIELD.fullmatch(name)
        if field:
            return str(responses[field[1]][field[2]])
        return substitute(variables[name], variables, responses)

    return REFERENCE.sub(value, text)


def is_destructive(request: Request) -> bool:
    """Cancels or removes jobs: a DELETE, or one of the old app's terminate and wipe routes."""
    path = urlsplit(request.url).path
    return request.method == "DELETE" or "/api/terminate/" in path or path.endswith("/api/wipe")


def test_the_requests_that_cancel_or_remove_jobs_are_last_and_marked() -> None:
    _, requests = parse(API_HTTP.read_text())
    marked = [request.title.startswith(DESTRUCTIVE) for request in requests]
    assert marked == [is_destructive(request) for request in requests], [
        request.title for request in requests
    ]
    first = marked.index(True)
    assert all(marked[first:]), [request.title for request in requests[first:]]


def test_api_http_top_to_bottom_gets_the_promised_answers_and_its_jobs_fire(
    developer_app: DeveloperApp,
) -> None:
    app = developer_app.app
    variables, requests = parse(API_HTTP.read_text())
    assert len(requests) >= 25, [request.title for request in requests]
    port = urlsplit(app.base_url).port
    variables["baseUrl"] = re.sub(r":\d+$", f":{port}", variables["baseUrl"])
    variables["functionKey"] = app.function_key
    variables["masterKey"] = app.admin_key
    responses: dict[str, Any] = {}
    answered: list[str] = []
    one_time_jobs: list[str] = []
    with serving_receiver() as receiver, httpx.Client(trust_env=False, timeout=30) as client:
        variables["receiverUrl"] = receiver.url_for("").rstrip("/")
        for request in requests:
            if request.title.startswith(DESTRUCTIVE) and one_time_jobs:
                # The developer watches the jobs fire before sending what removes them.
                wait_until_fired(client, app.base_url, app.function_key, one_time_jobs, answered)
                assert len(receiver.requests_to("/hooks/text")) == 1
                assert len(receiver.requests_to("/hooks/json")) == 1
                one_time_jobs = []
            sent = client.request(
                request.method,
                substitute(request.url, variables, responses),
                headers={
                    name: substitute(value, variables, responses)
                    for name, value in request.headers.items()
                },
                content=substitute(request.body, variables, responses).encode() or None,
            )
            answered.append(f"{sent.status_code} {request.method} {request.title}")
            assert sent.status_code < 500, "\n".join(answered)
            assert sent.status_code not in (401, 403, 405), "\n".join(answered)
            if request.name:
                responses[request.name] = sent.json()
            # "…: 202 … (409 unless the job failed; 404 when unknown)": any status named.
            promised = {int(status) for status in PROMISED_STATUS.findall(request.title)}
            if promised:
                assert sent.status_code in promised, "\n".join(answered)
            elif request.title.startswith("Schedule"):
                assert sent.status_code == 202, "\n".join(answered)
                body = json.loads(substitute(request.body, variables, responses))
                if "exec_at" in body or "delay" in body:
                    one_time_jobs.append(sent.json()["transaction_id"])
            else:
                assert sent.status_code in (200, 202), "\n".join(answered)
    # The admin delete found its job (it ran, so its record is removed), not a 404.
    assert any(line.startswith("200 POST DESTRUCTIVE: Admin: delete") for line in answered)


def wait_until_fired(
    client: httpx.Client, base_url: str, key: str, jobs: list[str], answered: list[str]
) -> None:
    deadline = time.monotonic() + FIRE_TIMEOUT_SECONDS
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        for job in jobs:
            status = client.get(
                f"{base_url}/api/schedule/{job}/status", headers={"x-functions-key": key}
            )
            states[job] = status.json()["state"]
        if all(state == "succeeded" for state in states.values()):
            return
        time.sleep(1)
    pytest.fail(f"the file's jobs did not all fire: {states}\n" + "\n".join(answered))
