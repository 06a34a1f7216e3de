"""`scheduler batch`, `list --label`, `schedule --label` and `cancel-many` against the app on
the local durable host, over HTTP, as a script would run them."""

import json
import uuid
from pathlib import Path

import pytest

from tests.support.cli import CliHost, Ran, run_cli

# Fixtures: the app as run-local.sh configures it.
from tests.support.cli import cli_host as cli_host

pytestmark = pytest.mark.live


def ok(ran: Ran) -> Ran:
    assert ran.code == 0, (ran.code, ran.stdout, ran.stderr)
    return ran


def test_a_batch_with_labels_is_listed_by_label_and_cancelled_by_it(
    cli_host: CliHost, tmp_path: Path
) -> None:
    env = cli_host.environment()
    tenant = f"t{uuid.uuid4().hex[:12]}"
    jobs = [
        {
            "idempotency_key": f"{tenant}-{n}",
            "delay": "1h",
            "prompt_type": "log.append",
            "payload": {"message": f"job {n}"},
            "labels": {"tenant": tenant},
        }
        for n in range(3)
    ]
    source = tmp_path / "jobs.json"
    source.write_text(json.dumps({"jobs": jobs}))

    first = ok(run_cli(["--json", "batch", str(source)], env)).json()
    assert (first["created"], first["existed"], first["failed"]) == (3, 0, 0)
    again = ok(run_cli(["--json", "batch", str(source)], env)).json()
    assert (again["created"], again["existed"]) == (0, 3)
    ids = {result["job"]["transaction_id"] for result in first["results"]}
    assert {result["job"]["transaction_id"] for result in again["results"]} == ids

    single = ok(
        run_cli(["--json", "schedule", "--in", "1h", "--log", "one more", "--label",
                 f"tenant={tenant}", "--label", "kind=single"], env)
    ).json()  # fmt: skip
    listed = ok(run_cli(["--json", "list", "--label", f"tenant={tenant}"], env)).json()
    assert {job["transaction_id"] for job in listed["jobs"]} == {*ids, single["transaction_id"]}
    both = ok(
        run_cli(["--json", "list", "--label", f"tenant={tenant}", "--label", "kind=single"], env)
    ).json()
    assert [job["transaction_id"] for job in both["jobs"]] == [single["transaction_id"]]
    assert both["jobs"][0]["labels"] == {"kind": "single", "tenant": tenant}

    cancelled = ok(run_cli(["--json", "cancel-many", "--label", f"tenant={tenant}"], env)).json()
    assert cancelled == {"cancelled": 4, "firing": [], "unreadable": 0}
    after = ok(run_cli(["--json", "list", "--label", f"tenant={tenant}"], env)).json()
    assert after["jobs"] == []


def test_cancel_many_without_a_filter_sends_nothing(cli_host: CliHost) -> None:
    ran = run_cli(["cancel-many"], cli_host.environment())
    assert ran.code == 2, (ran.stdout, ran.stderr)
    assert "--label" in ran.stderr


def test_the_python_client_schedules_a_batch_and_cancels_it_by_label(cli_host: CliHost) -> None:
    from scheduler_client import BatchItem, SchedulerClient

    tenant = f"p{uuid.uuid4().hex[:12]}"
    with SchedulerClient(cli_host.base_url, key=cli_host.function_key) as client:
        outcome = client.schedule_batch(
            [
                BatchItem(
                    delay="1h",
                    prompt_type="log.append",
                    payload={"message": f"job {n}"},
                    labels={"tenant": tenant},
                    idempotency_key=f"{tenant}-{n}",
                )
                for n in range(2)
            ]
        )
        assert [result.result for result in outcome.results] == ["created", "created"]
        listed = client.list_jobs(label=[f"tenant={tenant}"])
        assert len(listed.jobs) == 2
        cancelled = client.cancel_matching(label=[f"tenant={tenant}"])
        assert (cancelled.cancelled, cancelled.firing, cancelled.complete) == (2, [], True)


def test_a_batch_with_a_failed_job_exits_non_zero(cli_host: CliHost, tmp_path: Path) -> None:
    # `scheduler batch jobs.json && next-step` must not go on when a job was not scheduled.
    good = {"delay": "1h", "prompt_type": "log.append", "payload": {"message": "kept"}}
    bad = {
        "exec_at": "2020-01-01T00:00:00Z",
        "prompt_type": "log.append",
        "payload": good["payload"],
    }
    source = tmp_path / "jobs.json"
    source.write_text(json.dumps({"jobs": [good, bad]}))

    ran = run_cli(["--json", "batch", str(source)], cli_host.environment())
    assert ran.code == 4, (ran.code, ran.stdout, ran.stderr)
    answer = ran.json()
    assert (answer["created"], answer["failed"]) == (1, 1)
    human = run_cli(["batch", str(source)], cli_host.environment())
    assert human.code == 4, (human.code, human.stdout, human.stderr)
    assert "1: failed" in human.stdout
