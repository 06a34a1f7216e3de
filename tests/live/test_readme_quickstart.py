"""The README's Quickstart, followed as a newcomer follows it: its code blocks, parsed out of
README.md and run in order, in a fresh copy of the checkout (tests/test_run_local.py's).

Only what must differ on a shared test machine is changed: the ports (the app's 7071 through
FUNC_PORT and Azurite's through their variables, as run-local.sh documents; the receiver's
8080 in the text), SCHEDULER_HOST=local (this machine cannot run Core Tools, where `auto`
would first try to install it), and the one-time `pip install -e clients/python`, which is
not run: the suite's venv has it from requirements-dev.txt (the test checks the line is that
command). Block 1 runs in the background until its banner, block 2 (the receiver) in the
background for the whole test, the rest in one bash session, as a reader's third terminal.
The job must fire, and the receiver must print it verified, for the curl and for `scheduler`.
"""

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Running, start, wait_until_listening
from tests.support.doc_blocks import code_blocks
from tests.support.local_servers import free_port
from tests.support.run_local_script import BANNER_END, BASH, checkout_copy, free_ports, run_local

pytestmark = pytest.mark.live

README = Path(__file__).resolve().parents[2] / "README.md"
QUICKSTART = re.compile(r"^## Quickstart\n(.*?)(?=^## )", re.MULTILINE | re.DOTALL)
INSTALL = ".venv/bin/python -m pip install -e clients/python"
RECEIVER_PORT = "8080"
APP_PORT = "7071"


def quickstart_blocks() -> list[str]:
    text = README.read_text()
    section = QUICKSTART.search(text)
    assert section, "README.md has no `## Quickstart` section"
    start = text.count("\n", 0, section.start()) + 1
    end = text.count("\n", 0, section.end()) + 1
    return [block.text for block in code_blocks(README, "bash") if start <= block.line < end]


@contextlib.contextmanager
def background(script: str, cwd: Path, env: dict[str, str]) -> Iterator[Running]:
    """`script` in bash, in the background, until the block ends."""
    running = start([BASH, "-c", script], env, cwd)
    try:
        yield running
    finally:
        running.stop()


def test_the_readme_quickstart_works_as_written(tmp_path: Path) -> None:
    blocks = quickstart_blocks()
    assert len(blocks) >= 4, blocks
    run_app, receiver_block, *terminal = blocks
    assert run_app.strip() == "scripts/run-local.sh"
    assert receiver_block.splitlines()[0] == INSTALL
    receiver_script = "\n".join(receiver_block.splitlines()[1:])

    root = checkout_copy(tmp_path / "clone")
    (root / "clients").symlink_to(README.parent / "clients")
    ports = free_ports()
    receiver_port = str(free_port())

    def substituted(text: str) -> str:
        text = re.sub(rf"\b{APP_PORT}\b", str(ports["FUNC_PORT"]), text)
        return re.sub(rf"\b{RECEIVER_PORT}\b", receiver_port, text)

    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SCHEDULER_", "LOCAL_HOST_")) and name != "VIRTUAL_ENV"
    }
    started = time.monotonic()
    with run_local(root, ports) as app:
        assert app.until(BANNER_END), app.text()
        with background(substituted(receiver_script), root, environment) as receiver:
            wait_until_listening(int(receiver_port))
            third = subprocess.run(
                [BASH, "-e", "-c", substituted("\n".join(terminal))],
                cwd=root,
                env=environment,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert third.returncode == 0, (third.stdout, third.stderr)
            printed = [receiver.next_line(), receiver.next_line()]
            printed += [receiver.next_line(), receiver.next_line()]
    elapsed = time.monotonic() - started

    # The curl's 202: a job with its instant.
    accepted = json.loads(third.stdout.splitlines()[0])
    assert accepted["state"] == "pending"
    curl_job = accepted["transaction_id"]
    # `scheduler status` at the end: the command line's job succeeded.
    assert re.search(r"^\s+state\s+succeeded$", third.stdout, re.MULTILINE), third.stdout
    cli_job = next(
        line for line in third.stdout.splitlines() if re.fullmatch(r"[0-9a-f-]{36}", line)
    )
    assert cli_job != curl_job
    assert " outcome " in third.stdout  # the log, followed to its end

    # The receiver printed both calls, each verified, with its body.
    deliveries = "\n".join(printed)
    heads = [line for line in printed if not line.startswith("  ")]
    assert len(heads) == 2, deliveries
    assert all("POST /hello  verified" in head for head in heads), deliveries
    assert f"job {curl_job}" in deliveries
    assert f"job {cli_job}" in deliveries
    assert 'application/json: {"from":"curl"}' in deliveries
    assert 'application/json: {"from":"scheduler"}' in deliveries
    # Five minutes, as the README promises (the venv and node_modules are the suite's).
    assert elapsed < 300, elapsed
