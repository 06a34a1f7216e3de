"""POST /api/schedule/batch: each job checked and accepted on its own, results in request
order, a retried batch creates no duplicate, and the index rows are written together."""

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.batch import MAX_BATCH_BYTES, MAX_BATCH_JOBS
from api.responses import BatchOutcome
from scheduling.timing import format_utc
from tests.support.local_servers import AzuriteService
from tests.support.scheduler import START, Scheduler, running_scheduler
from tests.support.table_requests import TableRequestLog
from tests.test_http_api import assert_problem


def job(number: int = 0, *, labels: dict[str, str] | None = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exec_at": format_utc(START + timedelta(hours=1)),
        "prompt_type": "log.append",
        "payload": {"message": f"job {number}"},
        **more,
    }
    if labels is not None:
        body["labels"] = labels
    return body


async def send(scheduler: Scheduler, jobs: Any) -> dict[str, Any]:
    reply = await scheduler.api.post("/api/schedule/batch", {"jobs": jobs})
    assert reply.status == 200, reply.body
    outcome: dict[str, Any] = reply.json()
    return outcome


async def test_each_job_is_checked_on_its_own_and_answered_in_request_order(
    scheduler: Scheduler,
) -> None:
    outcome = await send(
        scheduler,
        [
            job(0, labels={"tenant": "acme"}),
            job(1, labels={"Tenant": "acme"}),
            {**job(2), "prompt_type": "sms.send"},
            {},
            job(4, idempotency_key="k-4"),
            job(5, idempotency_key="k-4"),
            {**job(6), "exec_at": format_utc(START)},
            job(7, idempotency_key="has space"),
            job(8),
        ],
    )
    results = outcome["results"]
    assert [result["index"] for result in results] == list(range(9))
    assert [result["result"] for result in results] == [
        "created",
        "failed",
        "failed",
        "failed",
        "created",
        "failed",
        "failed",
        "failed",
        "created",
    ]
    assert (outcome["created"], outcome["existed"], outcome["failed"]) == (3, 0, 6)
    problems = {result["index"]: result["problem"] for result in results if result["problem"]}
    assert problems[1]["status"] == 422
    assert ["labels", "Tenant", "[key]"] in [error["loc"] for error in problems[1]["errors"]]
    assert [error["loc"] for error in problems[2]["errors"]] == [["prompt_type"]]
    assert problems[3]["status"] == 422
    assert ["prompt_type"] in [error["loc"] for error in problems[3]["errors"]]
    assert [error["loc"] for error in problems[5]["errors"]] == [["idempotency_key"]]
    assert "job 4" in problems[5]["errors"][0]["msg"]
    assert [error["type"] for error in problems[6]["errors"]] == ["min_lead"]
    assert problems[7]["status"] == 400

    created = [result["job"]["transaction_id"] for result in results if result["job"]]
    assert all(result["job"] is None for result in results if result["problem"])
    assert sorted(scheduler.orchestrations_started()) == sorted(created)
    listed = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert sorted(job["transaction_id"] for job in listed) == sorted(created)
    first = results[0]["job"]
    assert first["status_url"].endswith(f"/api/schedule/{first['transaction_id']}/status")
    status = (await scheduler.api.get(f"/api/schedule/{first['transaction_id']}/status")).json()
    assert status["labels"] == {"tenant": "acme"}
    # Its log says it was accepted, as for a single create.
    log = (await scheduler.api.get(f"/api/schedule/{first['transaction_id']}/logs")).json()
    assert [entry["kind"] for entry in log["entries"]] == ["accepted"]


async def test_a_batch_sent_again_after_a_lost_answer_creates_no_duplicate(
    scheduler: Scheduler,
) -> None:
    jobs = [job(n, idempotency_key=f"batch-7-{n}", labels={"run": "7"}) for n in range(30)]
    first = await send(scheduler, jobs)
    assert first["created"] == 30
    # The answer was lost: the caller sends the very same batch again.
    again = await send(scheduler, jobs)
    assert (again["created"], again["existed"], again["failed"]) == (0, 30, 0)
    assert [r["job"]["transaction_id"] for r in again["results"]] == [
        r["job"]["transaction_id"] for r in first["results"]
    ]
    assert len(scheduler.orchestrations_started()) == 30
    listed = (await scheduler.api.get("/api/schedule?label=run=7&limit=100")).json()["jobs"]
    assert len(listed) == 30
    # A key of the batch sent with another job is refused, as for a single create.
    reused = await send(scheduler, [job(99, idempotency_key="batch-7-0")])
    assert reused["results"][0]["problem"]["status"] == 409
    # And a single create with the key and the same job is the same job.
    single = await scheduler.api.request(
        "POST",
        "/api/schedule",
        json_body=job(0, labels={"run": "7"}),
        headers={"Idempotency-Key": "batch-7-0"},
    )
    assert single.status == 202
    assert single.json()["transaction_id"] == first["results"][0]["job"]["transaction_id"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ([job()], 422),
        ({"jobs": []}, 422),
        ({"jobs": job()}, 422),
        ({"jobs": [job()], "more": 1}, 422),
        ({"jobs": [job(), "not a job"]}, 422),
        ({"jobs": [job()] * (MAX_BATCH_JOBS + 1)}, 422),
    ],
)
async def test_a_body_that_is_not_a_batch_is_refused_whole(
    scheduler: Scheduler, body: Any, status: int
) -> None:
    assert_problem(await scheduler.api.post("/api/schedule/batch", body), status)
    assert scheduler.orchestrations_started() == []


async def test_a_batch_over_its_byte_limit_is_a_413(scheduler: Scheduler) -> None:
    big = {"message": "m" * 2000}
    jobs = [{**job(n), "payload": big} for n in range(MAX_BATCH_BYTES // 2000 + 1)]
    body = json.dumps({"jobs": jobs[:MAX_BATCH_JOBS]}).encode()
    assert len(body) > MAX_BATCH_BYTES
    reply = await scheduler.api.request(
        "POST", "/api/schedule/batch", body=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(reply, 413)


async def test_a_job_over_the_single_create_limit_is_refused_alone(
    scheduler: Scheduler,
) -> None:
    too_big = {**job(1), "payload": {"message": "m" * scheduler.settings.max_request_bytes}}
    outcome = await send(scheduler, [job(0), too_big])
    assert [r["result"] for r in outcome["results"]] == ["created", "failed"]
    assert outcome["results"][1]["problem"]["status"] == 413


def compact_size(body: dict[str, Any]) -> int:
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())


async def test_a_job_is_measured_as_its_single_create_sends_it(azurite: AzuriteService) -> None:
    """The job limit is the single create's, on the job as our client (and httpx) sends
    it: compact UTF-8, its key in a header. Measured escaped to ASCII and with its key, a
    job a single create takes was refused (413) in a batch."""
    with running_scheduler(azurite, max_request_bytes=1024) as scheduler:
        accented = job(0, payload={"message": "é" * 450})  # 986 bytes; escaped, 2,786
        long_key = job(1, payload={"message": "m" * 930})  # 1,016 bytes; the key is 255 more
        over = job(2, payload={"message": "é" * 470})
        assert [compact_size(j) for j in (accented, long_key, over)] == [986, 1016, 1026]
        single = await scheduler.api.request(
            "POST",
            "/api/schedule",
            body=json.dumps(accented, ensure_ascii=False, separators=(",", ":")).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert single.status == 202, single.json()
        outcome = await send(
            scheduler, [accented, {**long_key, "idempotency_key": "k" * 255}, over]
        )
        assert [r["result"] for r in outcome["results"]] == ["created", "created", "failed"]
        assert outcome["results"][2]["problem"]["status"] == 413


async def test_the_index_rows_of_a_batch_are_written_together(azurite: AzuriteService) -> None:
    """250 jobs due in one minute with one label: 3 transactions to the due index and 3 to
    the label index, not 250 writes to each; one insert per record (a partition each)."""
    with TableRequestLog(azurite) as wire:
        through_the_wire = AzuriteService(wire.table_endpoint, wire.connection_string)
        with running_scheduler(through_the_wire) as scheduler:
            await send(scheduler, [job(0, labels={"tenant": "acme"})])  # tables made
            wire.clear()
            outcome = await send(scheduler, [job(n, labels={"tenant": "acme"}) for n in range(250)])
            assert outcome["created"] == 250
            requests = [request.describe() for request in wire.requests()]
            jobs = scheduler.settings.job_table
    batches = Counter(r for r in requests if r.startswith("POST $batch"))
    assert batches == {
        f"POST $batch of 100 [{', '.join([f'PUT {jobs}due entity'] * 100)}] -> 202": 2,
        f"POST $batch of 50 [{', '.join([f'PUT {jobs}due entity'] * 50)}] -> 202": 1,
        f"POST $batch of 100 [{', '.join([f'PUT {jobs}labels entity'] * 100)}] -> 202": 2,
        f"POST $batch of 50 [{', '.join([f'PUT {jobs}labels entity'] * 50)}] -> 202": 1,
    }
    # A record is a partition of its own: one insert each.
    assert Counter(requests)[f"POST {jobs} entity -> 201"] == 250


async def test_a_batched_job_keeps_its_accepted_entry_after_its_record_is_deleted(
    scheduler: Scheduler,
) -> None:
    """A batch leaves the accepted entry to be derived from the record; the record's delete
    writes it first, so the log still says it after the record is gone."""
    outcome = await send(scheduler, [job(0)])
    transaction_id = outcome["results"][0]["job"]["transaction_id"]
    scheduler.host.run()
    scheduler.host.advance_to(START + timedelta(hours=1, minutes=1))
    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200
    log = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()
    kinds = [entry["kind"] for entry in log["entries"]]
    assert kinds[0] == "accepted"
    assert kinds[-1] == "deleted"
    assert scheduler.job_store.get(transaction_id) is None


async def test_a_resent_job_that_was_cancelled_since_says_so(scheduler: Scheduler) -> None:
    """The first answer again, as a single create's replay: the job as it is now (cancelled,
    no next fire time), in the documented shape."""
    jobs = [job(0, idempotency_key="resend-cancelled")]
    first = await send(scheduler, jobs)
    transaction_id = first["results"][0]["job"]["transaction_id"]
    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200
    again = BatchOutcome.model_validate(await send(scheduler, jobs))
    (result,) = again.results
    assert result.result == "existed"
    assert result.job is not None
    assert (result.job.state, result.job.next_fire_at) == ("cancelled", None)
    assert len(scheduler.orchestrations_started()) == 1


async def test_an_idempotency_key_header_on_a_batch_is_refused_not_ignored(
    scheduler: Scheduler,
) -> None:
    # A client that sends Idempotency-Key with every POST must not believe a batch sent
    # again is safe: the key is per job (`idempotency_key`), and a header would be ignored.
    reply = await scheduler.api.request(
        "POST",
        "/api/schedule/batch",
        json_body={"jobs": [job(0)]},
        headers={"Idempotency-Key": "batch-1"},
    )
    problem = assert_problem(reply, 400)
    assert "idempotency_key" in problem["detail"]
    assert scheduler.orchestrations_started() == []
    assert (await scheduler.api.get("/api/schedule")).json()["jobs"] == []


@pytest.mark.parametrize("ca_bundle", [None, "file", "folder"])
async def test_a_batch_is_stored_with_or_without_a_ca_bundle_in_the_environment(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch, ca_bundle: str | None
) -> None:
    """The batch's async clients take requests' CA bundle, a file or a folder (a
    TLS-inspecting proxy's root, say): either way its jobs are stored."""
    import certifi

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    if ca_bundle == "file":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    elif ca_bundle == "folder":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(Path(certifi.where()).parent))
    outcome = await send(scheduler, [job(n) for n in range(3)])
    assert outcome["created"] == 3
    for result in outcome["results"]:
        assert scheduler.job_store.get(result["job"]["transaction_id"]) is not None


async def test_a_ca_bundle_that_names_no_file_is_a_503_and_stores_nothing(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    reply = await scheduler.api.post("/api/schedule/batch", {"jobs": [job(0)]})
    assert assert_problem(reply, 503)["type"].endswith(":backend-unavailable")
    listed = (await scheduler.api.get("/api/schedule")).json()
    assert listed["jobs"] == []
