"""Every `scheduler` subcommand against the app on the local durable host, over HTTP, as a
script would run it: exit codes and `--json` output (docs/cli.md documents both)."""

import json
import os
import pty
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from standardwebhooks import Webhook

from tests.support.cli import (
    SCHEDULER,
    CliHost,
    Ran,
    Running,
    run_cli,
    start_cli,
    wait_until_listening,
)

# Fixtures: the app as run-local.sh configures it, and `scheduler receive` running.
from tests.support.cli import cli_host as cli_host
from tests.support.cli import receiving as receiving
from tests.support.local_servers import free_port

pytestmark = pytest.mark.live

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A spinner or any cursor movement: what only a terminal should get.
TERMINAL_CONTROL = re.compile(r"\x1b\[|[\u2800-\u28ff]")


def ok(ran: Ran) -> Ran:
    assert ran.code == 0, (ran.code, ran.stdout, ran.stderr)
    return ran


def schedule(cli_host: CliHost, *args: str) -> dict[str, object]:
    answer: dict[str, object] = ok(
        run_cli(["--json", "schedule", *args], cli_host.environment())
    ).json()
    return answer


def delivery(running: Running) -> dict[str, object]:
    line: dict[str, object] = json.loads(running.next_line())
    return line


def test_schedule_in_a_relative_delay_fires_and_receive_verifies_the_signed_call(
    cli_host: CliHost, receiving: tuple[str, Running]
) -> None:
    url, receiver = receiving
    accepted = schedule(
        cli_host, "--in", "2s", "--post", f"{url}/hook", "--json", '{"greeting": "hello"}'
    )
    assert UUID.match(str(accepted["transaction_id"]))
    assert accepted["state"] == "pending"

    got = delivery(receiver)
    assert got["verified"] is True
    assert got["method"] == "POST"
    assert got["path"] == "/hook"
    assert got["body_kind"] == "json"
    assert got["body"] == {"greeting": "hello"}
    assert got["transaction_id"] == accepted["transaction_id"]
    assert got["webhook_id"]


def test_receive_takes_text_and_empty_bodies_and_refuses_a_wrong_signature(
    cli_host: CliHost, receiving: tuple[str, Running]
) -> None:
    url, receiver = receiving
    text_job = schedule(
        cli_host, "--in", "2s", "--put", f"{url}/text", "--body", "plain words",
        "-H", "Content-Type: text/plain",
    )  # fmt: skip
    got = delivery(receiver)
    assert (got["verified"], got["body_kind"], got["body"]) == (True, "text", "plain words")
    assert got["transaction_id"] == text_job["transaction_id"]

    # A credential the job sends its target is named, never printed.
    secret_job = schedule(
        cli_host, "--in", "2s", "--post", f"{url}/secret",
        "-H", "Authorization: Bearer s3cret-token", "-H", "X-Api-Key: k3y-value",
    )  # fmt: skip
    printed = receiver.next_line()
    assert "s3cret-token" not in printed
    assert "k3y-value" not in printed
    got = json.loads(printed)
    assert got["transaction_id"] == secret_job["transaction_id"]
    headers = got["headers"]
    assert isinstance(headers, dict)
    assert headers["authorization"] == headers["x-api-key"] == "(hidden)"
    assert headers["webhook-id"] == got["webhook_id"]

    empty_job = schedule(cli_host, "--in", "2s", "--post", f"{url}/empty")
    got = delivery(receiver)
    assert (got["verified"], got["body_kind"], got["body"]) == (True, "empty", None)
    assert got["transaction_id"] == empty_job["transaction_id"]

    # Signed with another secret: answered 401 and shown as refused.
    other = Webhook("whsec_" + "A" * 32)
    message_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = other.sign(message_id, now, "forged")
    answer = httpx.post(
        f"{url}/forged",
        content=b"forged",
        headers={
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        },
        trust_env=False,
    )
    assert answer.status_code == 401
    got = delivery(receiver)
    assert got["verified"] is False
    assert got["path"] == "/forged"
    assert got["refusal"]


def test_receive_count_stops_after_that_many_verified_deliveries(cli_host: CliHost) -> None:
    port = free_port()
    receiver = start_cli(["receive", "--port", str(port), "--count", "1"], cli_host.environment())
    try:
        wait_until_listening(port)
        job = schedule(
            cli_host, "--in", "2s", "--post", f"http://127.0.0.1:{port}/once", "--json", "[1, 2]"
        )
        assert receiver.wait() == 0
        printed = "\n".join([receiver.next_line(), receiver.next_line()])
        assert f"job {job['transaction_id']}" in printed
        assert "POST /once  verified" in printed
        assert "[1,2]" in printed
    finally:
        receiver.stop()


def test_status_logs_follow_and_list_of_a_log_append_job(cli_host: CliHost) -> None:
    env = cli_host.environment()
    job = schedule(cli_host, "--in", "2s", "--log", "good morning", "--field", "count=3")
    job_id = str(job["transaction_id"])

    listed = ok(run_cli(["list", "--json", "--limit", "500"], env)).json()
    assert job_id in {listed_job["transaction_id"] for listed_job in listed["jobs"]}

    # --follow prints each entry once, as JSON lines, and ends when the job has ended.
    follow = ok(run_cli(["logs", job_id, "--follow", "--json", "--interval", "0.5"], env))
    entries = [json.loads(line) for line in follow.stdout.splitlines()]
    kinds = [entry["kind"] for entry in entries]
    assert kinds[0] == "accepted"
    assert "log" in kinds
    assert len({entry["entry_id"] for entry in entries}) == len(entries)
    logged = next(entry for entry in entries if entry["kind"] == "log")
    assert logged["message"] == "good morning"
    assert logged["fields"] == {"count": 3}
    assert not TERMINAL_CONTROL.search(follow.stderr), "a spinner off a terminal"

    status = ok(run_cli(["status", job_id, "--json"], env)).json()
    assert status["state"] == "succeeded"
    assert status["prompt_type"] == "log.append"
    assert status["attempts"] == 1

    human = ok(run_cli(["status", job_id], env)).stdout
    assert human.splitlines()[0] == job_id
    assert re.search(r"^\s+state\s+succeeded$", human, re.MULTILINE)

    logs = ok(run_cli(["logs", job_id, "--json"], env)).json()
    assert [entry["entry_id"] for entry in logs["entries"]] == [e["entry_id"] for e in entries]
    plain = ok(run_cli(["logs", job_id], env)).stdout
    assert "good morning" in plain


def test_cron_jobs_preview_pause_resume_and_cancel(cli_host: CliHost) -> None:
    env = cli_host.environment()
    weekdays = ["--cron", "0 9 * * MON-FRI", "--tz", "Europe/Paris"]
    preview = ok(run_cli(["preview", "--json", *weekdays, "--count", "3"], env)).json()
    assert len(preview["fire_times"]) == 3
    assert all(moment.endswith(("07:00:00Z", "08:00:00Z")) for moment in preview["fire_times"])

    job = schedule(cli_host, *weekdays, "--log", "standup")
    job_id = str(job["transaction_id"])
    assert job["next_fire_at"] == preview["fire_times"][0]

    paused = ok(run_cli(["pause", job_id, "--json"], env)).json()
    assert paused["state"] == "paused"
    assert ok(run_cli(["list", "--json", "--state", "paused", "--all"], env)).json()["jobs"]

    resumed = ok(run_cli(["resume", job_id], env))
    assert resumed.stdout.startswith(f"resumed {job_id}: pending")

    cancelled = ok(run_cli(["cancel", job_id, "--json"], env)).json()
    assert cancelled == {"transaction_id": job_id, "deleted": True, "state_before": "pending"}
    assert ok(run_cli(["status", job_id, "--json"], env)).json()["state"] == "cancelled"
    # A second cancel finds nothing left to delete: exit code 3, and the API's reason.
    again = run_cli(["cancel", job_id], env)
    assert again.code == 3
    assert "it was deleted" in again.stderr


def test_a_failed_job_is_listed_by_failed_and_replay_runs_it_again(cli_host: CliHost) -> None:
    env = cli_host.environment()
    closed = f"http://127.0.0.1:{free_port()}/nobody-listens"
    job = schedule(cli_host, "--in", "1s", "--post", closed)
    job_id = str(job["transaction_id"])
    ok(run_cli(["logs", job_id, "--follow", "--interval", "0.5"], env))
    assert ok(run_cli(["status", job_id, "--json"], env)).json()["state"] == "failed"

    failed = ok(run_cli(["failed", "--json", "--all"], env)).json()
    assert job_id in {failed_job["transaction_id"] for failed_job in failed["jobs"]}
    table = ok(run_cli(["failed", "--all"], env)).stdout
    assert job_id in table

    replayed = ok(run_cli(["replay", job_id, "--json"], env)).json()
    assert replayed["transaction_id"] == job_id
    assert replayed["state"] in ("pending", "firing", "retrying", "failed")
    # It ran again: a second outcome, after the replay, and the job is failed once more.
    follow = ok(run_cli(["logs", job_id, "--follow", "--json", "--interval", "0.5"], env))
    kinds = [json.loads(line)["kind"] for line in follow.stdout.splitlines()]
    assert kinds.count("outcome") == 2, kinds
    assert kinds.index("replayed") < len(kinds) - 1 - kinds[::-1].index("outcome"), kinds
    assert ok(run_cli(["status", job_id, "--json"], env)).json()["state"] == "failed"

    # Replaying what is not failed is refused: the API's 409, exit code 4.
    live = schedule(cli_host, "--in", "1h", "--log", "later")
    refused = run_cli(["--json", "replay", str(live["transaction_id"])], env)
    assert refused.code == 4
    assert refused.json()["status"] == 409
    ok(run_cli(["cancel", str(live["transaction_id"])], env))


def test_exit_codes_a_script_can_tell_apart(cli_host: CliHost) -> None:
    env = cli_host.environment()
    unknown = str(uuid.uuid4())
    assert run_cli(["status", unknown], env).code == 3
    assert run_cli(["cancel", unknown], env).code == 3

    wrong_key = run_cli(["list"], cli_host.environment(SCHEDULER_KEY="not-the-key"))
    assert wrong_key.code == 4
    assert "401" in wrong_key.stderr
    assert "not-the-key" not in wrong_key.stdout + wrong_key.stderr

    invalid = run_cli(["--json", "schedule", "--in", "5 minutes", "--log", "x"], env)
    assert invalid.code == 2  # caught before anything is sent
    assert invalid.stdout == ""

    too_soon = run_cli(["--json", "schedule", "--at", "2020-01-01T00:00:00Z", "--log", "x"], env)
    assert too_soon.code == 4
    problem = too_soon.json()
    assert problem["status"] == 422

    nobody = run_cli(
        ["list"], cli_host.environment(SCHEDULER_URL=f"http://127.0.0.1:{free_port()}")
    )
    assert nobody.code == 5
    assert "cannot connect" in nobody.stderr

    assert run_cli(["status", "not-an-id"], env).code == 2
    bad_secret = run_cli(["receive", "--port", "0", "--secret", "whsec_not*base64"], env)
    assert bad_secret.code == 2
    assert "not*base64" not in bad_secret.stdout + bad_secret.stderr
    assert (
        run_cli(["schedule", "--in", "5m", "--at", "2030-01-01T00:00:00Z", "--log", "x"], env).code
        == 2
    )


def test_on_this_machine_the_key_and_secret_come_from_local_settings_json(
    cli_host: CliHost, tmp_path: Path
) -> None:
    """In the checkout (or a folder below it) run-local.sh's keys need no configuring."""
    bare = {
        name: value
        for name, value in cli_host.environment().items()
        if name not in ("SCHEDULER_KEY", "SCHEDULER_WEBHOOK_SECRET")
    }
    below = cli_host.settings_dir / "some" / "folder"
    below.mkdir(parents=True, exist_ok=True)
    assert ok(run_cli(["key"], bare, cwd=below)).stdout == f"{cli_host.function_key}\n"
    assert ok(run_cli(["list", "--json"], bare, cwd=below)).json()["jobs"] is not None

    elsewhere = run_cli(["list"], bare, cwd=tmp_path)
    assert elsewhere.code == 4  # no key found: the app's 401
    assert run_cli(["key"], bare, cwd=tmp_path).code == 1
    no_secret = run_cli(["receive", "--port", "0"], bare, cwd=tmp_path)
    assert no_secret.code == 2
    assert "no signing secret" in no_secret.stderr


def test_progress_is_shown_on_a_terminal_only(cli_host: CliHost) -> None:
    """`logs --follow` on a terminal shows a spinner while it waits (off one it does not:
    test_status_logs_follow_and_list_of_a_log_append_job)."""
    job = schedule(cli_host, "--in", "3s", "--log", "on a terminal")
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [SCHEDULER, "logs", str(job["transaction_id"]), "--follow", "--interval", "0.5"],
            env=cli_host.environment(TERM="xterm-256color", COLUMNS="120"),
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
        )
    finally:
        os.close(terminal)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(30) == 0
    text = shown.decode(errors="replace")
    assert "on a terminal" in text
    assert f"following {job['transaction_id']}" in text
    assert TERMINAL_CONTROL.search(text)


def test_schedule_at_an_instant_or_a_wall_time_in_a_zone(cli_host: CliHost) -> None:
    env = cli_host.environment()
    day = (datetime.now(UTC) + timedelta(days=30)).date()
    paris = ZoneInfo("Europe/Paris")
    nine_in_paris = datetime.combine(day, dt_time(9), paris)
    expected = nine_in_paris.astimezone(UTC).isoformat().replace("+00:00", "Z")

    at_instant = schedule(cli_host, "--at", nine_in_paris.isoformat(), "--log", "an instant")
    assert at_instant["exec_at"] == expected
    wall_time = f"{day.isoformat()}T09:00:00"
    at_wall = schedule(cli_host, "--at", wall_time, "--tz", "Europe/Paris", "--log", "09:00")
    assert at_wall["exec_at"] == expected
    for job in (at_instant, at_wall):
        assert ok(run_cli(["cancel", str(job["transaction_id"])], env)).stdout.startswith(
            f"cancelled {job['transaction_id']} (was pending)"
        )
