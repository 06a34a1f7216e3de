"""scripts/run-local.sh run as a developer runs it, in a copy of the checkout (a temporary
folder): the script itself, links to the app's code, the venv's contents (in a folder of the
copy's own, where the script keeps its stamp) and node_modules, a requirements.txt (empty by
default: the venv has them all, pip has nothing to fetch) and a package-lock.json older than
node_modules (no `npm ci`). Used by tests/test_run_local.py and benchmarks/run_local_restart.py;
no pytest here."""

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.layout import APP_PACKAGES
from tests.support.local_servers import free_port

REPO = Path(__file__).resolve().parents[2]
LINKED = ("function_app.py", "host.json", *APP_PACKAGES, "local_durable_host")
BANNER_END = "Stop with Ctrl-C."
BASH = shutil.which("bash") or "/bin/bash"


def checkout_copy(root: Path, requirements: str = "") -> Path:
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "run-local.sh", root / "scripts" / "run-local.sh")
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    venv = root / ".venv"
    venv.mkdir()
    for entry in (REPO / ".venv").resolve().iterdir():
        if not entry.name.startswith(".run-local"):
            (venv / entry.name).symlink_to(entry)
    (root / "node_modules").symlink_to((REPO / "node_modules").resolve())
    shutil.copy(REPO / "local.settings.example.json", root / "local.settings.example.json")
    (root / "requirements.txt").write_text(requirements)
    lock = root / "package-lock.json"
    shutil.copy(REPO / "package-lock.json", lock)
    os.utime(lock, (0, 0))  # older than node_modules: no `npm ci`
    return root


@dataclass
class RunLocal:
    """The script running in its own session; its output, line by line."""

    process: subprocess.Popen[str]
    lines: "queue.Queue[str | None]" = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, text: str, timeout: float = 90.0) -> bool:
        """Read output until a line contains `text` (True) or the script ends (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if line is None:
                return False
            self.output.append(line)
            if text in line:
                return True
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + self.text())

    def text(self) -> str:
        return "\n".join(self.output)


@contextlib.contextmanager
def run_local(
    root: Path, ports: dict[str, int], host: str = "local", path_prefix: Path | None = None
) -> Iterator[RunLocal]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("AzureWebJobsStorage", "VIRTUAL_ENV") and not name.startswith("LOCAL_HOST_")
    }
    environment.update({name: str(port) for name, port in ports.items()})
    environment.update(SCHEDULER_HOST=host, PYTHON=str(root / ".venv" / "bin" / "python"))
    if path_prefix is not None:
        environment["PATH"] = f"{path_prefix}{os.pathsep}{environment['PATH']}"
    process = subprocess.Popen(
        [BASH, str(root / "scripts" / "run-local.sh")],
        cwd=root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    running = RunLocal(process)
    try:
        yield running
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    """TERM to the script (it stops the host and Azurite); then anything of its session left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(60)
    for pid in session_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait(10)


def session_members(session: int) -> list[int]:
    """The processes of the session the script leads: only what the test started."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session:
                    members.append(int(entry.name))
    return members


def free_ports() -> dict[str, int]:
    return {
        "AZURITE_BLOB_PORT": free_port(),
        "AZURITE_QUEUE_PORT": free_port(),
        "AZURITE_TABLE_PORT": free_port(),
        "FUNC_PORT": free_port(),
    }
