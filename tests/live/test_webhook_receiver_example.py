"""The receiver of docs/webhooks.md, run as a reader copies it, gets the scheduler's own signed
deliveries: a JSON body, a text body, a text body labelled JSON, a POST without a body and a
GET. It accepts each (204: the job succeeds) and refuses what it cannot verify (401)."""

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live.conftest import DeveloperApp, client_of
from tests.support.doc_blocks import block_after
from tests.support.local_servers import ServerProcess, start_server

pytestmark = pytest.mark.live

WEBHOOKS_MD = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
FIRE_TIMEOUT_SECONDS = 60.0
ENV = shutil.which("env") or "/usr/bin/env"


@pytest.fixture
def documented_receiver(developer_app: DeveloperApp, tmp_path: Path) -> Iterator[ServerProcess]:
    code = block_after(WEBHOOKS_MD, "Python (`pip install standardwebhooks`)", "python")
    script = tmp_path / "receiver.py"
    script.write_text(code.text)
    server = start_server(
        "documented-receiver",
        lambda port: [ENV, f"PORT={port}", sys.executable, str(script)],
        tmp_path,
        env={**os.environ, "SCHEDULER_WEBHOOK_SECRET": developer_app.webhook_secret},
    )
    try:
        yield server
    finally:
        server.stop()


def deliveries(url: str) -> dict[str, dict[str, Any]]:
    return {
        "json": {"method": "POST", "url": f"{url}/json", "json": {"order": 42}},
        "text": {
            "method": "POST",
            "url": f"{url}/text",
            "headers": {"Content-Type": "text/plain"},
            "body": "hello from the scheduler",
        },
        "text labelled JSON": {
            "method": "POST",
            "url": f"{url}/mislabelled",
            "headers": {"Content-Type": "application/json"},
            "body": "not json",
        },
        "POST without a body": {"method": "POST", "url": f"{url}/empty"},
        "GET": {"method": "GET", "url": f"{url}/get"},
    }


def test_the_documented_receiver_verifies_every_kind_of_body_the_scheduler_signs(
    developer_app: DeveloperApp, documented_receiver: ServerProcess
) -> None:
    url = f"http://127.0.0.1:{documented_receiver.port}"
    jobs: dict[str, str] = {}
    with client_of(developer_app.app.base_url, developer_app.app.function_key) as api:
        for kind, payload in deliveries(url).items():
            answer = api.post(
                "/api/schedule",
                json={"delay": "1s", "prompt_type": "http.call", "payload": payload},
            )
            assert answer.status_code == 202, answer.text
            jobs[kind] = answer.json()["transaction_id"]
        outcomes: dict[str, Any] = {}
        deadline = time.monotonic() + FIRE_TIMEOUT_SECONDS
        while time.monotonic() < deadline and len(outcomes) < len(jobs):
            for kind, job in jobs.items():
                status = api.get(f"/api/schedule/{job}/status").json()
                if status["state"] in ("succeeded", "failed"):
                    outcomes[kind] = (status["state"], status["last_outcome"]["status_code"])
            time.sleep(0.5)
    assert outcomes == {kind: ("succeeded", 204) for kind in jobs}, (
        documented_receiver.output_tail()
    )
    printed = documented_receiver.output_tail()
    assert "hello from the scheduler" in printed
    assert "{'order': 42}" in printed
    assert "not json" in printed
    assert "Traceback" not in printed


def test_the_documented_receiver_refuses_what_it_cannot_verify(
    documented_receiver: ServerProcess,
) -> None:
    url = f"http://127.0.0.1:{documented_receiver.port}/hook"
    now = str(int(time.time()))
    forged = {
        "webhook-id": "msg_forged",
        "webhook-timestamp": now,
        "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    }
    malformed = {**forged, "webhook-signature": "v1"}
    with httpx.Client(trust_env=False, timeout=10) as client:
        assert client.post(url, content=b"hello").status_code == 401
        assert client.post(url, content=b"hello", headers=forged).status_code == 401
        assert client.post(url, content=b"", headers=malformed).status_code == 401
        assert client.post(url, content=b"\xff\xfe", headers=forged).status_code == 401
    assert "Traceback" not in documented_receiver.output_tail()
