"""The second review's findings on the job store, each a behaviour a user would notice."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer

from storage.index_upkeep import row_verdict
from storage.job_store import DueEntry, DueRange, StaleRecord, StoredJob, TableJobStore
from storage.paging import decode_cursor, encode_cursor
from tests.store.test_job_store import new_record
from tests.support.scheduler import START, Scheduler

JOB = {"exec_at": "2026-12-01T09:00:00Z", "prompt_type": "log.append", "payload": {"message": "m"}}


async def create_with_key(scheduler: Scheduler, key: str) -> tuple[int, dict[str, object]]:
    reply = await scheduler.api.request(
        "POST",
        "/api/schedule",
        body=json.dumps(JOB).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    return reply.status, reply.json()


async def test_a_keyed_retry_starts_a_job_whose_orchestration_never_ran(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    # As if the creating worker died between storing the record and starting it.
    status, first = await create_with_key(scheduler, "order-7")
    assert status == 202
    transaction_id = str(first["transaction_id"])
    scheduler.host.purge_instance(scheduler.orchestration(transaction_id).instance_id)
    assert not scheduler.has_orchestration(transaction_id)

    status, again = await create_with_key(scheduler, "order-7")
    assert status == 202
    assert again["transaction_id"] == transaction_id
    scheduler.host.advance_to(datetime(2026, 12, 1, 10, tzinfo=UTC))
    reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
    assert reply.json()["state"] == "succeeded"


async def test_a_keyed_retry_of_a_deleted_job_says_it_will_not_fire(scheduler: Scheduler) -> None:
    _, first = await create_with_key(scheduler, "order-8")
    await scheduler.api.delete(f"/api/schedule/{first['transaction_id']}")
    status, again = await create_with_key(scheduler, "order-8")
    assert status == 202
    assert again["state"] == "cancelled"
    assert again["next_fire_at"] is None


async def test_a_resumed_job_gets_the_create_lead_before_its_next_run(
    scheduler: Scheduler,
) -> None:
    reply = await scheduler.api.post(
        "/api/schedule",
        {"cron": "* * * * *", "prompt_type": "log.append", "payload": {"message": "m"}},
    )
    transaction_id = reply.json()["transaction_id"]
    scheduler.host.advance_to(START + timedelta(minutes=3, seconds=30))
    await scheduler.api.post(f"/api/schedule/{transaction_id}/pause")
    resumed = (await scheduler.api.post(f"/api/schedule/{transaction_id}/resume")).json()
    lead = datetime.fromisoformat(resumed["next_fire_at"]) - scheduler.now()
    assert lead >= timedelta(seconds=scheduler.settings.min_lead_seconds)
    scheduler.host.advance(600)
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["runs"] >= 8  # it kept running after the resume


async def test_a_write_whose_answer_was_lost_is_not_taken_for_a_lost_swap(
    scheduler: Scheduler,
) -> None:
    transaction_id = (await scheduler.schedule("log.append", {"message": "m"})).json()[
        "transaction_id"
    ]
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    cancelled = stored.record.model_copy(update={"state": "cancelled"})
    scheduler.job_store.replace(stored, cancelled)
    # The client's retry of the same write, with the ETag it read before the first try.
    again = scheduler.job_store.replace(stored, cancelled)
    assert again.record == cancelled


async def test_a_reader_drops_only_the_row_version_it_read(scheduler: Scheduler) -> None:
    transaction_id = (await scheduler.schedule("log.append", {"message": "m"})).json()[
        "transaction_id"
    ]
    (entry,), _ = scheduler.job_store.due_page(DueRange(), 10, None)
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    # A writer indexes the same key again (a new generation) after the reader read the row.
    scheduler.job_store.index(stored.record.model_copy(update={"generation": "new"}))
    scheduler.job_store.drop_entry(entry)
    (kept,), _ = scheduler.job_store.due_page(DueRange(), 10, None)
    assert kept.generation == "new"


def test_rows_are_listed_skipped_or_dropped_by_what_their_record_says() -> None:

    record = new_record(START)
    entry = DueEntry(
        transaction_id=record.transaction_id,
        generation=record.generation,
        exec_at=record.exec_at,
        prompt_type=record.prompt_type,
        written_at=START,
    )
    assert row_verdict(entry, record, START) == "list"
    assert row_verdict(entry, record.model_copy(update={"generation": "g2"}), START) == "skip"
    assert row_verdict(entry, record.model_copy(update={"state": "succeeded"}), START) == "drop"
    # No record yet: a create on its way, then, much later, one that never finished.
    assert row_verdict(entry, None, START + timedelta(minutes=1)) == "skip"
    assert row_verdict(entry, None, START + timedelta(hours=1)) == "drop"


def test_a_token_without_a_next_row_key_makes_a_cursor_too() -> None:
    token = {"PartitionKey": "1!16!MjAyNjEyMDEwOTMw"}
    assert decode_cursor(encode_cursor(token, "scope"), "scope") == token


async def test_a_row_written_again_after_its_etag_was_read_is_not_dropped_by_that_etag(
    scheduler: Scheduler,
) -> None:
    # Two changes of one job at once: the first may drop its old row only if nobody has
    # written that row since (the second change moving the job back to that time).
    transaction_id = (await scheduler.schedule("log.append", {"message": "m"})).json()[
        "transaction_id"
    ]
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    read = scheduler.job_store.row_etag(stored.record)
    scheduler.job_store.index(stored.record.model_copy(update={"generation": "second"}))
    scheduler.job_store.unindex(transaction_id, stored.record.exec_at, read)
    (kept,), _ = scheduler.job_store.due_page(DueRange(), 10, None)
    assert kept.generation == "second"


async def test_a_replay_that_starts_the_job_makes_its_creators_take_back_lose(
    scheduler: Scheduler,
) -> None:
    status, first = await create_with_key(scheduler, "order-9")
    transaction_id = str(first["transaction_id"])
    creators_view = scheduler.job_store.get(transaction_id)  # what a stalled creator holds
    assert creators_view is not None
    scheduler.host.purge_instance(scheduler.orchestration(transaction_id).instance_id)

    status, _ = await create_with_key(scheduler, "order-9")
    assert status == 202
    # The creator's take-back now loses its swap: it answers 202 too, the job stays.
    with pytest.raises(StaleRecord):
        scheduler.job_store.delete(creators_view)
    assert scheduler.has_orchestration(transaction_id)


async def test_a_take_back_leaves_no_index_row_behind(scheduler: Scheduler) -> None:
    # Readers would skip them, but the stalled-job repair and the wipe read the index from
    # its head: rows of jobs that never came to be would crowd out the live ones.
    body = {**JOB, "labels": {"tenant": "acme", "tier": "gold"}}
    scheduler.host.fail_next("POST", "orchestrators/")
    reply = await scheduler.api.request(
        "POST",
        "/api/schedule",
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": "order-12"},
    )
    assert reply.status == 503
    assert scheduler.job_store.due_page(DueRange(), 10, None)[0] == []
    for pair in {"tenant": "acme", "tier": "gold"}.items():
        assert scheduler.job_store.label_page(pair, None, 10, None)[0] == []


async def test_a_keyed_retry_racing_a_take_back_keeps_its_job_listed(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first request's start fails and it takes its job back; the client's retry with the
    # same key creates the job again between that take-back's delete and what follows it.
    loop = asyncio.get_running_loop()
    retried: list[tuple[int, dict[str, object]]] = []
    delete = TableJobStore.delete

    def delete_then_retry(store: TableJobStore, stored: StoredJob) -> None:
        delete(store, stored)
        if not retried:
            retry = asyncio.run_coroutine_threadsafe(create_with_key(scheduler, "order-11"), loop)
            retried.append(retry.result(timeout=30))

    monkeypatch.setattr(TableJobStore, "delete", delete_then_retry)
    scheduler.host.fail_next("POST", "orchestrators/")
    status, _ = await create_with_key(scheduler, "order-11")
    assert status == 503
    [(status, again)] = retried
    assert status == 202
    listed = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert [job["transaction_id"] for job in listed] == [again["transaction_id"]]
