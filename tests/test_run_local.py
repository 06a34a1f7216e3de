"""scripts/run-local.sh, run as a developer runs it, in a copy of the checkout: the keys it
makes, and the storage it lets the app use.

The copy (a temporary folder) holds the script and links to the app's code, the venv's
contents (in a folder of the copy's own, where the script keeps its stamp) and node_modules,
with an empty requirements.txt (the venv has them all: pip has nothing to fetch) and a
package-lock.json older than node_modules (no `npm ci`). SCHEDULER_HOST=local (or auto, with
an npm that fails to install Core Tools): the local durable host, on free ports, with Azurite
on free ports."""

import contextlib
import json
import os
import signal
import socket
import stat
import threading
import time
from pathlib import Path

import httpx

from tests.support.local_servers import free_port
from tests.support.run_local_script import (
    BANNER_END,
    REPO,
    checkout_copy,
    free_ports,
    run_local,
    session_members,
)

PUBLISHED = {
    "LOCAL_HOST_FUNCTION_KEY": "local-function-key",
    "LOCAL_HOST_MASTER_KEY": "local-master-key",
}


def test_the_local_host_runs_with_keys_of_its_own_never_the_published_ones(
    tmp_path: Path,
) -> None:
    example = json.loads((REPO / "local.settings.example.json").read_text())["Values"]
    root = checkout_copy(tmp_path / "clone")
    # A developer's local.settings.json written from an earlier example: the published keys.
    (root / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {**example, **PUBLISHED}})
    )
    ports = free_ports()
    with run_local(root, ports) as script:
        assert script.until(BANNER_END), script.text()
        settings = json.loads((root / "local.settings.json").read_text())["Values"]
        function_key = settings["LOCAL_HOST_FUNCTION_KEY"]
        master_key = settings["LOCAL_HOST_MASTER_KEY"]
        assert min(len(function_key), len(master_key)) >= 40
        assert function_key != master_key
        assert {function_key, master_key}.isdisjoint(PUBLISHED.values())
        # The banner says what they are and where they live; only the owner reads the file.
        assert function_key in script.text()
        assert master_key in script.text()
        assert "in local.settings.json" in script.text()
        # ... and the rest a developer needs: the address, where the secret that signs
        # deliveries is (never the secret), the minimum lead, the state folder, retention.
        assert f"http://127.0.0.1:{ports['FUNC_PORT']}/api/" in script.text()
        assert "webhook signing secret: WEBHOOK_SIGNING_SECRETS in local.settings.json" in (
            script.text()
        )
        assert settings["WEBHOOK_SIGNING_SECRETS"] not in script.text()
        assert "minimum lead: 1 s" in script.text()
        assert "state: .local-host/" in script.text()
        assert "purged 72 h after they finish" in script.text()
        assert stat.S_IMODE((root / "local.settings.json").stat().st_mode) == 0o600
        base = f"http://127.0.0.1:{ports['FUNC_PORT']}/api/healthz/details"
        with httpx.Client(trust_env=False, timeout=30) as client:
            for published in PUBLISHED.values():
                assert client.get(base, headers={"x-functions-key": published}).status_code == 401
            assert client.get(base, headers={"x-functions-key": master_key}).status_code == 200
    # A fresh clone's settings have no keys to keep: the script makes them.
    assert example["LOCAL_HOST_FUNCTION_KEY"] == ""
    assert example["LOCAL_HOST_MASTER_KEY"] == ""


def test_the_app_never_starts_on_storage_another_process_took_after_the_port_check(
    tmp_path: Path,
) -> None:
    root = checkout_copy(tmp_path / "clone")
    # Another process holds Azurite's ports, bound but not yet listening: the script's check
    # finds them free, Azurite cannot listen there, and then the other process answers.
    taken = []
    for _ in range(3):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        taken.append(sock)
    ports = {
        "AZURITE_BLOB_PORT": taken[0].getsockname()[1],
        "AZURITE_QUEUE_PORT": taken[1].getsockname()[1],
        "AZURITE_TABLE_PORT": taken[2].getsockname()[1],
        "FUNC_PORT": free_port(),
    }
    log = root / ".azurite" / "azurite.log"

    def answer_once_azurite_gave_up() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if "EADDRINUSE" in log.read_text():
                    break
            time.sleep(0.02)
        for sock in taken:
            sock.listen()

    foreign = threading.Thread(target=answer_once_azurite_gave_up, daemon=True)
    foreign.start()
    try:
        with run_local(root, ports) as script:
            started = script.until("starting the local durable host", timeout=120)
            foreign.join(60)
            assert not started, script.text()
            assert script.process.wait(30) != 0
            assert "another process took it after this script checked it was free" in script.text()
    finally:
        for sock in taken:
            sock.close()


def test_when_azurite_is_killed_under_it_the_app_is_stopped_and_says_why(
    tmp_path: Path,
) -> None:
    # A killed Azurite comes back without the writes it acknowledged in its last seconds:
    # the app must not go on as if nothing happened (nor on whatever takes the port next).
    root = checkout_copy(tmp_path / "clone")
    ports = free_ports()
    with run_local(root, ports) as script:
        assert script.until(BANNER_END), script.text()
        [azurite] = [
            pid
            for pid in session_members(script.process.pid)
            if b"node_modules/.bin/azurite\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        os.kill(azurite, signal.SIGKILL)
        assert script.process.wait(60) != 0
        script.until("Start again with", timeout=10)
        assert "Azurite (process" in script.text()
        assert "stopping the app" in script.text()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", ports["FUNC_PORT"])) != 0


def command_folder(folder: Path, name: str, script: str) -> Path:
    """A folder to put first on PATH, holding one executable `name` that runs `script`."""
    folder.mkdir()
    (folder / name).write_text(script)
    (folder / name).chmod(0o755)
    return folder


FAILING_CORE_TOOLS_INSTALL = """#!/bin/sh
# npm as it ends when Core Tools' installer cannot download the host: the reason, then the
# installer's own error handler failing on it.
[ "$1" = install ] || exit 0
echo "attempting to GET https://cdn.example/Azure.Functions.Cli.linux-x64.zip"
echo "Error: getaddrinfo ENOTFOUND cdn.example"
echo "/tools/node_modules/azure-functions-core-tools/lib/install.js:58"
echo "TypeError: chalk.red is not a function"
echo "    at ClientRequest.<anonymous> (install.js:58:25)"
echo "npm error code 1"
exit 1
"""


def test_a_restart_with_nothing_changed_runs_no_pip_and_a_failed_install_says_why(
    tmp_path: Path,
) -> None:
    root = checkout_copy(tmp_path / "clone")
    fake_npm = command_folder(tmp_path / "bin", "npm", FAILING_CORE_TOOLS_INSTALL)
    with run_local(root, free_ports(), host="auto", path_prefix=fake_npm) as script:
        assert script.until(BANNER_END), script.text()
        first = script.text()
    assert "installing runtime dependencies" in first
    # The reason is shown, not only the installer's TypeError that hid it.
    assert "reason: Error: getaddrinfo ENOTFOUND cdn.example" in first, first
    assert "chalk" not in first
    with run_local(root, free_ports(), host="auto", path_prefix=fake_npm) as script:
        assert script.until(BANNER_END), script.text()
        second = script.text()
    assert "installing runtime dependencies" not in second, second
    assert "could not be installed here before" in second
    # requirements.txt changed: pip runs again.
    (root / "requirements.txt").write_text("# a new pin\n")
    with run_local(root, free_ports(), host="auto", path_prefix=fake_npm) as script:
        assert script.until(BANNER_END), script.text()
        assert "installing runtime dependencies" in script.text()


FAKE_CORE_TOOLS = """#!/bin/sh
# Core Tools v4 as far as run-local.sh can tell: its version, and a `start` that runs.
case "$1" in
    --version) echo 4.0.7030 ;;
    start) echo "fake func start $*"; exec sleep 120 ;;
esac
"""


def test_on_core_tools_the_script_says_where_the_secret_and_the_state_are(
    tmp_path: Path,
) -> None:
    root = checkout_copy(tmp_path / "clone")
    tools = command_folder(tmp_path / "bin", "func", FAKE_CORE_TOOLS)
    ports = free_ports()
    with run_local(root, ports, host="func", path_prefix=tools) as script:
        assert script.until("fake func start"), script.text()
        text = script.text()
    assert f"starting func on http://localhost:{ports['FUNC_PORT']}/api/" in text
    assert "webhook signing secret: WEBHOOK_SIGNING_SECRETS in local.settings.json" in text
    assert "state: Azurite's data in .azurite/" in text
    secret = json.loads((root / "local.settings.json").read_text())["Values"][
        "WEBHOOK_SIGNING_SECRETS"
    ]
    assert secret.startswith("whsec_")
    assert secret not in text
