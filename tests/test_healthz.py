"""GET /api/healthz (anonymous) and /api/healthz/details (master key) against a stand-in
durable extension that answers what each test says.

The routes run with a real `df.DurableOrchestrationClient` (built from a client binding whose
rpcBaseUrl is a local ThreadingHTTPServer), so the SDK's own handling of each answer is used.
"""

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import tzdata

from blueprints import dependencies
from blueprints.admin import BACKEND_UNAVAILABLE, HEALTH_PROBE_ID
from scheduling.settings import SchedulerSettings
from tests.support.app_client import AppClient
from tests.support.scheduler import TEST_SEALING_KEYS, Scheduler

# What the extension's CreateErrorResponse puts in a 400/500 body; none of it may leak.
INTERNALS = "Microsoft.WindowsAzure.Storage.StorageException: 403 (secret-account-name)"
ERROR_BODY = {
    "Message": "Something went wrong while processing your request",
    "ExceptionMessage": INTERNALS,
    "ExceptionType": "Microsoft.WindowsAzure.Storage.StorageException",
    "StackTrace": "   at DurableTask.AzureStorage...",
}


@dataclass
class Extension:
    """The extension's HTTP API, as far as a status read goes: answers `status` and `body`."""

    status: int = 404
    body: bytes = b""
    paths: list[str] = field(default_factory=list)

    def answer(self, status: int, body: Any = None) -> None:
        self.status = status
        self.body = b"" if body is None else json.dumps(body).encode()


@pytest.fixture(autouse=True)
def configured() -> Iterator[None]:
    """Settings that work (a sealing key), so that health is the backend's alone here; a
    setting that is wrong is tests/test_misconfigured_sealing.py's."""
    settings = SchedulerSettings(sealing_keys=TEST_SEALING_KEYS)
    with dependencies.overridden(settings=lambda: settings):
        yield


@pytest.fixture
def extension() -> Iterator[tuple[Extension, str]]:
    """A running stand-in, and the client binding that points the SDK at it."""
    state = Extension()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.paths.append(self.path)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, client_binding(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def client_binding(origin: str) -> str:
    """A durable client binding (as local_durable_host/extension_api.py gives) for `origin`."""
    webhooks = f"{origin}/runtime/webhooks/durabletask"
    return json.dumps(
        {
            "taskHubName": "HealthzHub",
            "connectionName": None,
            "creationUrls": {
                "createNewInstancePostUri": f"{webhooks}/orchestrators/{{functionName}}",
                "createAndWaitOnNewInstancePostUri": f"{webhooks}/orchestrators/{{functionName}}",
            },
            "managementUrls": {"id": "INSTANCEID", "statusQueryGetUri": f"{webhooks}/instances"},
            "baseUrl": webhooks,
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": f"{origin}/durabletask/",
        }
    )


ANONYMOUS = "/api/healthz"
DETAILS = "/api/healthz/details"


async def healthz(binding: str, path: str = DETAILS) -> tuple[int, dict[str, Any]]:
    reply = await AppClient(binding).get(path)
    assert reply.content_type == "application/json"
    body: dict[str, Any] = reply.json()
    return reply.status, body


def assert_unavailable(status: int, body: dict[str, Any]) -> None:
    assert status == 503
    assert body["status"] == "degraded"
    assert body["durable_backend"] == "unavailable"
    assert body["durable_backend_error"] == BACKEND_UNAVAILABLE


async def test_an_unknown_probe_id_means_the_backend_answers(
    extension: tuple[Extension, str],
) -> None:
    state, binding = extension
    state.answer(404)  # the extension's "no such instance": an empty body

    status, body = await healthz(binding)

    assert status == 200
    assert body["status"] == "ok"
    assert body["durable_backend"] == "ok"
    assert "durable_backend_error" not in body
    assert state.paths == [f"/durabletask/instances/{HEALTH_PROBE_ID}"]


async def test_anonymous_health_is_the_status_alone(extension: tuple[Extension, str]) -> None:
    # It disclosed the Python, runtime and SDK versions to anyone who asked.
    state, binding = extension
    state.answer(404)
    assert await healthz(binding, ANONYMOUS) == (200, {"status": "ok"})
    state.answer(500, ERROR_BODY)
    assert await healthz(binding, ANONYMOUS) == (503, {"status": "degraded"})


async def test_the_details_route_reports_the_versions(extension: tuple[Extension, str]) -> None:
    state, binding = extension
    state.answer(404)

    status, body = await healthz(binding, DETAILS)

    assert status == 200
    assert body["python_version"].startswith("3.")
    assert body["durable_sdk_version"].startswith("1.")
    assert body["azure_functions_version"]
    assert body["functions_runtime_version"]
    # The zone data every fire time is computed with: the pinned tzdata package's release.
    assert body["tzdata_version"] == tzdata.IANA_VERSION


@pytest.mark.parametrize("code", [500, 400])
async def test_an_error_body_from_the_extension_is_unavailable(
    extension: tuple[Extension, str], code: int
) -> None:
    # The SDK does not raise here: it returns a falsy status built from the error body.
    state, binding = extension
    state.answer(code, ERROR_BODY)

    status, body = await healthz(binding)

    assert_unavailable(status, body)
    assert "secret-account-name" not in json.dumps(body)


async def test_an_error_body_with_only_a_message_is_unavailable(
    extension: tuple[Extension, str],
) -> None:
    state, binding = extension
    state.answer(500, {"Message": "An error has occurred."})

    assert_unavailable(*await healthz(binding))


async def test_an_unexpected_status_is_unavailable_without_its_text(
    extension: tuple[Extension, str],
) -> None:
    # The SDK raises Exception("The operation failed with an unexpected status code 503").
    state, binding = extension
    state.answer(503, ERROR_BODY)

    status, body = await healthz(binding)

    assert_unavailable(status, body)
    assert "status code" not in json.dumps(body)
    assert "secret-account-name" not in json.dumps(body)


async def test_no_backend_at_all_is_unavailable_without_the_error_text() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    binding = client_binding(f"http://127.0.0.1:{port}")

    status, body = await healthz(binding)

    assert_unavailable(status, body)
    # aiohttp's text names the host and port it tried; not even an admin caller gets them.
    assert str(port) not in json.dumps(body)
    assert "Cannot connect" not in json.dumps(body)
    assert await healthz(binding, ANONYMOUS) == (503, {"status": "degraded"})


async def test_the_whole_app_reports_health_on_the_durable_stand_in(scheduler: Scheduler) -> None:
    anonymous = await scheduler.api.get(ANONYMOUS)
    details = await scheduler.api.get(DETAILS)
    assert (anonymous.status, anonymous.json()) == (200, {"status": "ok"})
    assert details.status == 200
    assert details.json()["durable_backend"] == "ok"
    assert details.json()["durable_sdk_version"].startswith("1.")

    scheduler.host.close()
    anonymous = await scheduler.api.get(ANONYMOUS)
    details = await scheduler.api.get(DETAILS)
    assert (anonymous.status, anonymous.json()) == (503, {"status": "degraded"})
    assert_unavailable(details.status, details.json())
