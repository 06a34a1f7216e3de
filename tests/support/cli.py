"""The `scheduler` command as a user runs it: a process of its own, configured by the
environment, against the app on the local durable host over HTTP, with `scheduler receive`
as the target of the jobs it schedules (fixtures for tests/live/test_cli*.py)."""

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.live.conftest import DeveloperApp
from tests.support.local_servers import free_port

# The command `-e ./clients/python` (requirements-dev.txt) installed beside this interpreter.
SCHEDULER = str(Path(sys.executable).parent / "scheduler")
# Every job here is due a few seconds after it is created; the local host fires a timer
# within its idle wait (0.5 s); the rest is the claim, the activity and the call.
FIRE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class CliHost:
    """The app under test, and the environment a user of `scheduler` would have for it."""

    base_url: str
    function_key: str
    webhook_secret: str
    # The folder of its local.settings.json, as the root of a developer's checkout.
    settings_dir: Path

    def environment(self, **extra: str) -> dict[str, str]:
        """This process's environment without any scheduler setting of the developer's,
        plus the app's URL and key (and the receiver's secret)."""
        kept = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("SCHEDULER_") and name not in ("COLUMNS", "LINES")
        }
        return {
            **kept,
            "SCHEDULER_URL": self.base_url,
            "SCHEDULER_KEY": self.function_key,
            "SCHEDULER_WEBHOOK_SECRET": self.webhook_secret,
            **extra,
        }


@pytest.fixture(scope="module")
def cli_host(developer_app: DeveloperApp) -> CliHost:
    """The app as scripts/run-local.sh configures it (a minimum lead of 1 s, so `--in 2s` is
    taken; a webhook signing secret, so every call is signed and `receive` verifies)."""
    app = developer_app.app
    return CliHost(
        app.base_url, app.function_key, developer_app.webhook_secret, developer_app.workdir
    )


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(
    args: list[str], env: Mapping[str, str], cwd: Path | None = None, timeout: float = 60.0
) -> Ran:
    """`scheduler ARGS` to its end; its exit code and output (stdin is not a terminal)."""
    done = subprocess.run(
        [SCHEDULER, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


@dataclass
class Running:
    """A `scheduler` command running in the background (`receive`, `logs --follow`): its
    standard output line by line as it comes."""

    process: subprocess.Popen[str]
    lines: "queue.Queue[str | None]" = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)
    stderr_text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr_text.extend(self.process.stderr)

    def next_line(self, timeout: float = FIRE_TIMEOUT_SECONDS) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output within {timeout} s; stderr: {''.join(self.stderr_text)}")
        if line is None:
            pytest.fail(f"the command ended; stderr: {''.join(self.stderr_text)}")
        self.seen.append(line)
        return line

    def wait(self, timeout: float = FIRE_TIMEOUT_SECONDS) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Ctrl-C to the process and whatever it started (its own session: only what the
        test started); SIGKILL if that does not end it."""
        for signal_number in (signal.SIGINT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal_number)
            try:
                self.process.wait(10)
                return
            except subprocess.TimeoutExpired:
                continue


def start(argv: list[str], env: Mapping[str, str], cwd: Path | None = None) -> Running:
    """`argv` in the background, in a session of its own, its output read as it comes."""
    process = subprocess.Popen(
        argv,
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    return Running(process)


def start_cli(args: list[str], env: Mapping[str, str], cwd: Path | None = None) -> Running:
    return start([SCHEDULER, *args], env, cwd)


@pytest.fixture
def receiving(cli_host: CliHost) -> Iterator[tuple[str, Running]]:
    """`scheduler receive --json` on a free port: its URL and the running command."""
    port = free_port()
    running = start_cli(["--json", "receive", "--port", str(port)], cli_host.environment())
    try:
        wait_until_listening(port)
        yield f"http://127.0.0.1:{port}", running
    finally:
        running.stop()


def wait_until_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
