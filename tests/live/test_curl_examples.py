"""Every curl example of README.md and docs/, run as a reader runs them: each file's blocks in
one shell session, in order (a block that sets FUNCTION_KEY serves the blocks after it), in the
folder of the app's local.settings.json, against the app as scripts/run-local.sh runs it. Only
the address (http://localhost:7071, the Azure app's URL), the example targets
(https://hooks.example.com, the receiver on port 8080: here a local receiver) and a key read
with `az` are replaced, and $ID is set, as a reader pastes a transaction id: a failed job's
where the block replays, a pending job's elsewhere. Every request must be answered 2xx: an
example that sends no key, or the wrong one, fails.

curl: the real one when installed, with its arguments unchanged; else (and always as a second
run) tests/support/curl_shim.py sends the parsed arguments with httpx, so the examples are run
on every machine. Blocks of the README's Quickstart are left to its own test."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live.conftest import DeveloperApp, client_of, serving_receiver
from tests.support.doc_blocks import CodeBlock, code_blocks
from tests.support.local_servers import free_port

pytestmark = pytest.mark.live

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELLS = ("bash", "sh", "shell")
SHIM = REPO / "tests" / "support" / "curl_shim.py"
BASH = shutil.which("bash") or "/bin/bash"
REAL_CURL = shutil.which("curl")
CURL_LINE = re.compile(r"^\s*curl\s", re.MULTILINE)
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
AZ_KEY = re.compile(r"^(\w+)=\$\(az functionapp keys list[^\n]*\)$", re.MULTILINE)
SEPARATORS = "\n;|&"
BLOCK_END = "=== end of block"
READ_JOB: dict[str, object] = {
    "delay": "1h",
    "prompt_type": "log.append",
    "payload": {"message": "read me"},
}
QUICKSTART = re.compile(r"^## Quickstart\n(.*?)(?=^## )", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    block: CodeBlock
    curls: int


def runnable(block: CodeBlock) -> bool:
    """Only curl commands (with what they pipe into), assignments and comments."""
    lexer = shlex.shlex(block.text.replace("\\\n", " "), posix=True, punctuation_chars=SEPARATORS)
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = "#"
    first, after = True, ""
    for token in lexer:
        if set(token) <= set(SEPARATORS):
            first, after = True, token
        elif first:
            if "|" not in after and token != "curl" and not ASSIGNMENT.match(token):
                return False
            first = False
    return True


def quickstart_lines(path: Path) -> range:
    text = path.read_text()
    match = QUICKSTART.search(text)
    if not match:
        return range(0)
    return range(text.count("\n", 0, match.start()) + 1, text.count("\n", 0, match.end()) + 1)


def examples() -> dict[Path, list[Example]]:
    found: dict[Path, list[Example]] = {}
    for path in DOCUMENTS:
        skipped = quickstart_lines(path)
        for block in code_blocks(path, *SHELLS):
            if block.line in skipped or not runnable(block):
                continue
            # A block of assignments only (the keys) serves the curl blocks after it.
            found.setdefault(path, []).append(Example(block, len(CURL_LINE.findall(block.text))))
    return {path: blocks for path, blocks in found.items() if any(b.curls for b in blocks)}


def test_every_curl_example_outside_the_quickstart_is_one_this_test_runs() -> None:
    run = {(e.block.path, e.block.line) for blocks in examples().values() for e in blocks}
    for path in DOCUMENTS:
        skipped = quickstart_lines(path)
        for block in code_blocks(path):
            if CURL_LINE.search(block.text) and block.line not in skipped:
                assert (path, block.line) in run, f"{block.where()}: not runnable as it is"


def substituted(text: str, base_url: str, receiver_url: str, function_key: str) -> str:
    text = AZ_KEY.sub(lambda match: f"{match[1]}='{function_key}'", text)
    text = text.replace("$(azd env get-value FUNCTION_APP_URL)", base_url)
    text = re.sub(r"http://(localhost|127\.0\.0\.1):7071", base_url, text)
    for target in ("https://hooks.example.com", "http://127.0.0.1:8080"):
        text = text.replace(target, receiver_url)
    return text


@pytest.mark.parametrize("curl", ["curl", "httpx"])
def test_every_curl_example_is_answered_2xx(
    curl: str, developer_app: DeveloperApp, tmp_path: Path
) -> None:
    if curl == "curl" and REAL_CURL is None:
        pytest.skip("curl is not installed here; the httpx run covers the examples")
    app = developer_app.app
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "curl"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SHIM}" "$@"\n')
    shim.chmod(0o755)
    records = tmp_path / "records.jsonl"
    environment: dict[str, str] = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CURL_RECORD": str(records),
        "CURL_REAL": REAL_CURL if curl == "curl" and REAL_CURL else "",
    }
    with client_of(app.base_url, app.function_key) as api, serving_receiver() as receiver:
        for path, blocks in examples().items():
            # The read examples delete their job and wipe: each file gets jobs of its own.
            pending = schedule(api, READ_JOB)
            failed = failed_job(api) if "/replay" in path.read_text() else pending
            script = []
            for example in blocks:
                text = substituted(
                    example.block.text,
                    app.base_url,
                    receiver.url_for("").rstrip("/"),
                    app.function_key,
                )
                script += [
                    f"ID={failed if '/replay' in text else pending}",
                    text,
                    f"echo '{BLOCK_END} {example.block.line}' >>'{records}'",
                ]
            ran = subprocess.run(
                [BASH, "-c", "\n".join(script)],
                cwd=developer_app.workdir,
                env=environment,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert ran.returncode == 0, ran.stderr
            answered = answers_by_block(records.read_text())
            records.write_text("")
            for example in blocks:
                got = answered[example.block.line]
                assert len(got) == example.curls, (example.block.where(), got, ran.stderr)
                for answer in got:
                    assert 200 <= int(str(answer["status"])) < 300, (
                        example.block.where(),
                        answer,
                        ran.stdout,
                    )


def answers_by_block(text: str) -> dict[int, list[dict[str, object]]]:
    blocks: dict[int, list[dict[str, object]]] = {}
    current: list[dict[str, object]] = []
    for line in text.splitlines():
        if line.startswith(BLOCK_END):
            blocks[int(line.split()[-1])] = current
            current = []
        else:
            current.append(json.loads(line))
    return blocks


def schedule(api: httpx.Client, body: dict[str, object]) -> str:
    answer = api.post("/api/schedule", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["transaction_id"])


def failed_job(api: httpx.Client) -> str:
    """A job in the dead letters: its target refuses the connection and it has no retries."""
    job = schedule(
        api,
        {
            "delay": "1s",
            "prompt_type": "http.call",
            "payload": {"url": f"http://127.0.0.1:{free_port()}/gone"},
        },
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if api.get(f"/api/schedule/{job}/status").json()["state"] == "failed":
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job} did not fail")
