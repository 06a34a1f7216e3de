"""The local durable host's output, as a developer watches it: after a burst of requests (jobs
created, fired, read, listed, deleted), no line per storage request (the Azure SDK's request
and response logging is off unless asked for), no store existence check logged as an error,
and a clean shutdown: no ERROR, no unclosed client session."""

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.conftest import client_of, serving_receiver
from tests.live.local_host_process import LocalHostProcess
from tests.support.local_servers import AzuriteService

pytestmark = pytest.mark.live

JOBS = 20
BANNER_END = "Stop with Ctrl-C."
# What the Azure SDK's http_logging_policy writes for each request and each answer.
SDK_REQUEST_LINE = re.compile(r"Request URL:|Response status:|http_logging_policy")


@pytest.fixture
def host(azurite: AzuriteService, tmp_path: Path) -> Iterator[LocalHostProcess]:
    host = LocalHostProcess(azurite, tmp_path, {"MIN_LEAD_SECONDS": "1"})
    host.start()
    try:
        yield host
    finally:
        host.stop()


def output_after_banner(host: LocalHostProcess) -> list[str]:
    text = host.log_path.read_text(errors="replace")
    return text.split(BANNER_END, 1)[-1].splitlines()


def test_a_burst_prints_no_line_per_storage_request_and_shutdown_no_error(
    host: LocalHostProcess,
) -> None:
    with client_of(host.base_url, host.function_key) as api, serving_receiver() as receiver:
        # Reads first, while the store's tables do not exist yet: its existence checks 404.
        assert api.get("/api/schedule?limit=50").status_code == 200
        assert api.get("/api/failed?limit=50").status_code == 200
        unknown = "/api/schedule/00000000-0000-4000-8000-000000000000"
        assert api.get(f"{unknown}/status").status_code == 404
        assert api.get(f"{unknown}/logs").status_code == 404
        jobs = []
        for number in range(JOBS):
            payload = {"method": "POST", "url": receiver.url_for(f"/quiet/{number}")}
            answer = api.post(
                "/api/schedule",
                json={"delay": "1s", "prompt_type": "http.call", "payload": payload},
            )
            assert answer.status_code == 202, answer.text
            jobs.append(answer.json()["transaction_id"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [api.get(f"/api/schedule/{job}/status").json()["state"] for job in jobs]
            if all(state == "succeeded" for state in states):
                break
            time.sleep(0.5)
        assert all(state == "succeeded" for state in states), states
        for job in jobs:
            assert api.get(f"/api/schedule/{job}/logs").status_code == 200
        assert api.get("/api/schedule?limit=50").status_code == 200
        assert api.get("/api/failed?limit=50").status_code == 200
        for job in jobs[:5]:
            assert api.delete(f"/api/schedule/{job}").status_code == 200
    host.stop()
    # It stopped by itself on the TERM (not killed after the grace period), saying so.
    assert host.exit_status() == 0, host.output_tail()
    lines = output_after_banner(host)
    assert lines[-1] == "==> stopping the local durable host", "\n".join(lines)
    request_lines = [line for line in lines if SDK_REQUEST_LINE.search(line)]
    assert request_lines == [], "\n".join(lines[-40:])
    # Far fewer lines than the requests the store was sent (a few per job and per read).
    assert len(lines) < JOBS, "\n".join(lines)
    errors = [
        line for line in lines if "ERROR" in line or "Unclosed" in line or "Traceback" in line
    ]
    assert errors == [], "\n".join(lines)
