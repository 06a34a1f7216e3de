"""Many jobs in one request: each checked and accepted on its own, stored together.

Each job goes the way of a single create (blueprints/accepting.py): checked and sealed, its
index rows written before its record, its record inserted if absent, its orchestration
started, or taken back and reported. What a batch shares: the index rows of all its jobs
are written together (one entity group transaction per due minute, and per label, of up to
100 rows), and the records and starts run a few at a time. A job is never half-created: it
is accepted with its orchestration started (or, if the start failed and could not be taken
back, found and started by repair_stalled_jobs), or a problem in the answer.
"""

import asyncio
import logging
from collections.abc import Awaitable

import azure.durable_functions as df
import azure.functions as func

from api.batch import ITEM_KEY, MAX_BATCH_BYTES, BatchItem, batch_items
from api.problems import Problem, ProblemError, problem
from api.responses import BatchItemResult, BatchOutcome
from blueprints import dependencies
from blueprints.accepting import (
    IDEMPOTENCY_HEADER,
    AcceptedRecord,
    IndexRows,
    PreparedJob,
    accepted_job,
    prepare_job,
    store_and_start,
)
from blueprints.http_io import json_response, origin_of, read_json_body
from blueprints.instances import backend_unavailable, bounded
from storage.batch_writes import BatchWrites
from storage.job_store import LabelEntry, TableJobStore

log = logging.getLogger(__name__)
_INTERNAL = "this job failed unexpectedly (the app's logs say why)"
Step = PreparedJob | AcceptedRecord | Problem


async def create_batch(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """200 with one result per job, in request order; a problem only for the batch as a
    whole (not JSON, larger than MAX_BATCH_BYTES, not a list of 1 to MAX_BATCH_JOBS)."""
    if request.headers.get(IDEMPOTENCY_HEADER) is not None:
        # Ignored, it would let a client believe a batch sent again is safe.
        raise problem(
            400,
            "invalid-idempotency-key",
            "Invalid Idempotency-Key",
            f"a batch takes a key per job ({ITEM_KEY} in each job), not an "
            f"{IDEMPOTENCY_HEADER} header: send the batch without it",
        )
    deps = dependencies.current()
    settings = deps.settings()
    items = batch_items(read_json_body(request, MAX_BATCH_BYTES), settings.max_request_bytes)
    store = deps.job_store(settings)
    steps: list[Step] = await bounded(_prepare(client, store, item) for item in items)
    fresh = [step for step in steps if isinstance(step, PreparedJob)]
    if fresh:
        async with _batch_writes(store) as writes:
            indexed = await _index(writes, fresh)
            done = iter(
                await bounded(
                    _store_and_start(
                        client, store, writes, job, indexed.get(job.record.transaction_id)
                    )
                    for job in fresh
                )
            )
        steps = [next(done) if isinstance(step, PreparedJob) else step for step in steps]
    origin = origin_of(request)
    results = [_result(index, step, origin) for index, step in enumerate(steps)]
    outcome = BatchOutcome(
        results=results,
        created=sum(1 for result in results if result.result == "created"),
        existed=sum(1 for result in results if result.result == "existed"),
        failed=sum(1 for result in results if result.result == "failed"),
    )
    return json_response(outcome.model_dump(mode="json"))


def _batch_writes(store: TableJobStore) -> BatchWrites:
    try:
        return BatchWrites(store)
    except Exception:  # a CA bundle setting that names no file, say
        log.exception("opening the job store's async clients failed")
        raise backend_unavailable("open the job store; nothing was scheduled") from None


async def _prepare(
    client: df.DurableOrchestrationClient, store: TableJobStore, item: BatchItem
) -> Step:
    if item.refused is not None:
        return item.refused.problem
    return await _as_step(prepare_job(client, store, item.body, item.idempotency_key))


async def _index(writes: BatchWrites, jobs: list[PreparedJob]) -> dict[str, IndexRows]:
    """Write the jobs' due and label rows together: each job's rows by transaction id; none
    when the store did not take them (each job then writes its own, as a single create
    does)."""
    records = [job.record for job in jobs]
    try:
        async with asyncio.TaskGroup() as group:  # one failing cancels the other
            due_rows = group.create_task(writes.index_many(records))
            label_rows = group.create_task(writes.index_labels(records))
        due, labels = due_rows.result(), label_rows.result()
    except Exception:
        log.warning("indexing a batch of %d jobs together failed", len(jobs), exc_info=True)
        return {}
    by_job: dict[str, list[LabelEntry]] = {}
    for entry in labels:
        by_job.setdefault(entry.transaction_id, []).append(entry)
    return {
        transaction_id: IndexRows(etag, by_job.get(transaction_id, []))
        for transaction_id, etag in due.items()
    }


async def _store_and_start(
    client: df.DurableOrchestrationClient,
    store: TableJobStore,
    writes: BatchWrites,
    job: PreparedJob,
    indexed: IndexRows | None,
) -> Step:
    return await _as_step(
        store_and_start(client, store, job, batch=writes, indexed=indexed, log_accepted=False)
    )


async def _as_step(work: Awaitable[PreparedJob | AcceptedRecord]) -> Step:
    """The step's value, or the problem a single create would have answered."""
    try:
        return await work
    except ProblemError as error:
        return error.problem
    except Exception:
        log.exception("a job of a batch failed")
        return problem(500, "internal", "Internal error", _INTERNAL).problem


def _result(index: int, step: Step, origin: str) -> BatchItemResult:
    if isinstance(step, Problem):
        return BatchItemResult(index=index, result="failed", problem=step)
    if isinstance(step, PreparedJob):  # every prepared job was stored (or failed) above
        raise backend_unavailable("finish the batch")
    return BatchItemResult(
        index=index,
        result="existed" if step.replayed else "created",
        job=accepted_job(origin, step.record),
    )
