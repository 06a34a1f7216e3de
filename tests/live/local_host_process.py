"""The app on the local durable host (`python -m local_durable_host`) in a process of its own,
over the suite's Azurite, with fresh tables, fresh keys and a state folder: started, killed
with SIGKILL, and started again on the same port, as a developer's machine would see it."""

import base64
import json
import os
import secrets
import signal
import sys
from pathlib import Path

from tests.support.local_servers import REPO_ROOT, AzuriteService, ServerProcess, start_server
from tests.support.zone_files import wrong_zone_files


class LocalHostProcess:
    def __init__(
        self, azurite: AzuriteService, workdir: Path, settings: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        # Keys of its own, as scripts/run-local.sh makes them for a developer.
        self.function_key = secrets.token_urlsafe(32)
        self.master_key = secrets.token_urlsafe(32)
        self._settings = workdir / "local.settings.json"
        self._state_dir = workdir / "state"
        suffix = secrets.token_hex(4)
        values = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": azurite.connection_string,
            "JOB_TABLE": f"livejobs{suffix}",
            "SEALING_KEYS": "live1:" + base64.b64encode(os.urandom(32)).decode(),
            "REQUEST_FINGERPRINT_KEY": base64.b64encode(os.urandom(32)).decode(),
            "HTTP_CALL_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
            "LOCAL_HOST_FUNCTION_KEY": self.function_key,
            "LOCAL_HOST_MASTER_KEY": self.master_key,
            **(settings or {}),
        }
        self._settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
        self._server: ServerProcess | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The host's process id (it leads its own process group)."""
        assert self._server is not None
        return self._server.pid

    @property
    def log_path(self) -> Path:
        """Where the host's output (its banner and its log) goes."""
        assert self._server is not None
        return self._server.log_path

    def start(self) -> None:
        """Start the host (on the port it had, after a kill) and wait until it accepts."""
        # Zone files that are wrong on purpose, where zoneinfo looks first: the app must
        # read every zone from the pinned tzdata package instead (test_live_api.py checks).
        zone_files = wrong_zone_files(self.workdir / "host-zoneinfo")
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONTZPATH": str(zone_files),
        }
        self._server = start_server(
            "local-durable-host",
            lambda port: [
                sys.executable,
                "-m",
                "local_durable_host",
                "--port",
                str(port),
                "--settings",
                str(self._settings),
                "--state-dir",
                str(self._state_dir),
            ],
            self.workdir,
            env=environment,
            port=self.port,
        )
        self.port = self._server.port

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no last save."""
        assert self._server is not None
        os.killpg(self._server.pid, signal.SIGKILL)
        self._server.process.wait(10)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def exit_status(self) -> int | None:
        """The host's exit status once it ended (negative: killed by that signal)."""
        assert self._server is not None
        return self._server.process.poll()

    def output_tail(self) -> str:
        return self._server.output_tail() if self._server else ""
