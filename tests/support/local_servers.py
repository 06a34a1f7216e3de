"""Start and stop the npm-pinned local servers (`npm ci`): each in its own process group on a
free loopback port, always stopped. No pytest here: the test fixtures (services.py) and the
benchmarks (benchmarks/job_store.py) both start Azurite through this module."""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.table_storage import AZURITE_ACCOUNT, AZURITE_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 5.0


class ToolMissing(RuntimeError):
    """An npm-installed executable is not there; the message says how to install it."""


@dataclass(frozen=True)
class AzuriteService:
    """Azurite's Table service; `connection_string` is an AzureWebJobsStorage value for it."""

    table_endpoint: str
    connection_string: str
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def pid(self) -> int:
        """The server's own pid: the node binary is started directly, not through npx."""
        return self.process.pid

    def output_tail(self, limit: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-limit:]
        return ""

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT_SECONDS; always reaped."""
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT_SECONDS)


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The server leads its own group (start_new_session), so its pid is the group id. Once
    # reaped, that pid may belong to someone else: signal only a process not yet waited for.
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


def _die_with_parent() -> None:
    # Linux: the kernel kills the server if its parent dies, so none outlives a crash.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port() -> int:
    """A TCP port free on the loopback address right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def node_tool(name: str) -> Path:
    """The path of an npm-installed executable; ToolMissing with how to install it."""
    tool = NODE_BIN / name
    if not tool.exists():
        raise ToolMissing(
            f"{tool} is missing: run `npm ci` in {REPO_ROOT} "
            "(scripts/test.sh does) to install Azurite and the Cosmos DB API test server"
        )
    return tool


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_server(
    name: str,
    command: Callable[[int], Sequence[str]],
    workdir: Path,
    attempts: int = 3,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> ServerProcess:
    """Run `command(port)` on a free port (or on `port`: a restart) and wait until it accepts
    connections; a free port taken between choosing and binding (EADDRINUSE) is retried on
    another. `env`: the server's whole environment (default: this process's)."""
    chosen = port
    for attempt in range(1, attempts + 1 if chosen is None else 2):
        port = chosen or free_port()
        log_path = workdir / f"{name}-{port}.log"
        with log_path.open("wb") as log_file:
            # Output goes to a file, not a pipe: a full pipe would block a chatty server.
            process = subprocess.Popen(
                list(command(port)),
                cwd=workdir,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        server = ServerProcess(name, process, log_path, port)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while process.poll() is None and time.monotonic() < deadline:
                if _accepts_connections(port):
                    return server
                time.sleep(0.05)
        except BaseException:
            server.stop()
            raise
        exit_status = process.poll()
        server.stop()
        output = server.output_tail()
        if "EADDRINUSE" in output and attempt < attempts:
            continue
        state = (
            f"exited with status {exit_status}"
            if exit_status is not None
            else f"did not accept connections on {HOST}:{port} within {START_TIMEOUT_SECONDS}s"
        )
        raise RuntimeError(f"{name} {state}; its output:\n{output}")
    raise AssertionError("unreachable: the last attempt raises")


def azurite_table_command(tool: Path) -> Callable[[int], list[str]]:
    """Azurite's Table service alone, in memory, on `port` of the loopback address."""

    def command(port: int) -> list[str]:
        return [
            str(tool),
            "--tableHost",
            HOST,
            "--tablePort",
            str(port),
            # In memory: nothing to clean up, and --location may not be combined with it.
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            # Azurite would otherwise send usage data off this machine.
            "--disableTelemetry",
        ]

    return command


@contextlib.contextmanager
def running_azurite(
    workdir: Path, env: Mapping[str, str] | None = None
) -> Iterator[tuple[AzuriteService, ServerProcess]]:
    """Azurite's Table service (in memory) on a free loopback port, stopped on leaving."""
    server = start_server(
        "azurite-table", azurite_table_command(node_tool("azurite-table")), workdir, env=env
    )
    try:
        table_endpoint = f"http://{HOST}:{server.port}/{AZURITE_ACCOUNT}"
        service = AzuriteService(
            table_endpoint=table_endpoint,
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};TableEndpoint={table_endpoint};"
            ),
        )
        yield service, server
    finally:
        server.stop()
