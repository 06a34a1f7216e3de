"""Changing a job in place: pause, resume, PATCH (a new time or schedule, the same id), and
the replay of a failed job (a new run of it, now).

Each change is decided on the record and written by compare-and-swap, like a delete, so it
meets a firing attempt the same way: whoever writes first wins, and a change that loses to
a running attempt is a 409. A change that needs a new orchestration (resume; moving a
pending job) starts it first, for a new generation of the job, and only then swaps the
record: if the swap loses, the new orchestration finds a record of another generation and
ends without doing anything; if it wins, the old orchestration is in that position.

Whole at ~410 lines: the four changes share that start-then-swap protocol.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import ValidationError

from api.job_views import status_view
from api.problems import (
    FieldError,
    ProblemError,
    field_errors,
    not_found,
    problem,
    validation_problem,
)
from blueprints import dependencies
from blueprints.http_io import json_response, read_json_body
from blueprints.instances import (
    backend_unavailable,
    checked_id,
    orchestration_runs,
    start_orchestration,
    stop_quietly,
)
from blueprints.job_logs import record_lifecycle
from blueprints.unreadable import read_job, unreadable_conflict
from scheduling.job_record import LIVE_STATES, JobRecord, is_replaying, pause, replay, resume
from scheduling.models import ScheduleChange, ScheduleRequest
from scheduling.timing import earliest_run, format_utc
from scheduling.when import FirstRun, ScheduleError, first_run
from storage.index_upkeep import (
    drop_label_rows_quietly,
    forget_failure_quietly,
    label_rows_quietly,
    unindex_quietly,
)
from storage.job_log.lifecycle import cancelled_entry, lifecycle_entry, replayed_entry
from storage.job_rows import UnreadableRow, due_keys
from storage.job_store import StaleRecord, TableJobStore

MAX_SWAPS = 5
log = logging.getLogger(__name__)
_ONE_TIME_FIELDS = frozenset({"exec_at", "exec_local", "delay", "timezone", "dst_gap", "dst_fold"})
_RECURRING_FIELDS = frozenset(
    {"cron", "timezone", "dst_gap", "dst_fold", "start_at", "end_at", "max_runs"}
)


Change = Callable[[JobRecord], JobRecord]


async def pause_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    def paused(record: JobRecord) -> JobRecord:
        verdict, changed = pause(record, dependencies.current().clock())
        if verdict == "already-paused":
            return record
        if changed is None:
            raise _conflict(verdict, "paused")
        return changed

    before, after = await _swap(transaction_id, paused)
    if after.state == "paused" and before.state != "paused":
        await stop_quietly(client, before.instance_id)
        await _log(after, "paused", "paused through the API")
    return json_response(status_view(after))


async def resume_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    if (started := await _start_if_stalled(client, transaction_id)) is not None:
        return json_response(status_view(started))
    generation = uuid.uuid4().hex

    def resumed(record: JobRecord) -> JobRecord:
        now = dependencies.current().clock()
        lead = dependencies.current().settings().min_lead_seconds
        verdict, changed = resume(record, now, generation, earliest_run(now, lead))
        if changed is None:
            raise _conflict(verdict, "resumed")
        return changed

    _, after = await _swap(transaction_id, resumed, client=client)
    if after.state == "cancelled":  # it never ran, and never will
        if (entry := cancelled_entry(after)) is not None:
            await record_lifecycle(entry)
    elif after.state != "pending":
        await _log(after, "resumed", f"resumed with no run left in its schedule: {after.state}")
    else:
        await _log(after, "resumed", f"resumed; next run {format_utc(after.exec_at)}")
    return json_response(status_view(after))


async def replay_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    """Run a failed job again, now, as a new run (a new generation: a new orchestration, a
    new webhook-id); 202 with its view. A second replay while the first one's run is still
    going answers the same, and starts that run's orchestration if it is not running (a
    replay whose start failed after its swap)."""
    generation = uuid.uuid4().hex

    def replayed(record: JobRecord) -> JobRecord:
        verdict, changed = replay(record, dependencies.current().clock(), generation)
        if verdict == "replaying":
            return record
        if changed is None:
            raise problem(
                409,
                "job-state",
                "The job cannot be replayed",
                f"the job is {record.state}: only a failed job can be replayed",
            )
        return changed

    before, after = await _swap(transaction_id, replayed, client=client, cancelled_found=True)
    if after.generation == before.generation:
        await _start_if_not_running(client, after)
        return json_response(status_view(after), status=202)
    # Out of the failed list (a leftover row is dropped by its next reader: the record has
    # another generation now).
    store = dependencies.current().job_store(dependencies.current().settings())
    await asyncio.to_thread(forget_failure_quietly, store, before.transaction_id, before.failed_at)
    entry = replayed_entry(after)
    if entry is not None:
        await record_lifecycle(entry)
    return json_response(status_view(after), status=202)


async def _start_if_not_running(client: df.DurableOrchestrationClient, record: JobRecord) -> None:
    if not is_replaying(record) or record.state != "pending":
        return
    try:
        if not await orchestration_runs(client, record):
            await start_orchestration(client, record)
    except Exception:
        # A start that lost to another request's start of the same run is no failure.
        if not await orchestration_runs(client, record):
            log.exception("restarting the replay of %s failed", record.transaction_id)
            raise backend_unavailable("start the replay; send the request again") from None


async def _start_if_stalled(
    client: df.DurableOrchestrationClient, transaction_id: str
) -> JobRecord | None:
    """A pending recurring job whose orchestration is not running (a resume whose start
    failed after its swap): started now, and returned; None for any other job."""
    checked_id(transaction_id)
    deps = dependencies.current()
    try:
        found = await asyncio.to_thread(read_job, deps.job_store(deps.settings()), transaction_id)
    except Exception:
        log.exception("reading %s failed", transaction_id)
        raise backend_unavailable("start the job; send the request again") from None
    if isinstance(found, UnreadableRow):
        raise unreadable_conflict(found)
    record = found.record if found is not None else None
    if record is None or record.state != "pending" or record.recurrence is None:
        return None
    if await orchestration_runs(client, record):
        return None
    try:
        await start_orchestration(client, record)
    except Exception:
        # Another resume may have started it between the check and the start.
        if not await orchestration_runs(client, record):
            log.exception("restarting %s failed", transaction_id)
            raise backend_unavailable("start the job; send the request again") from None
    return record


async def reschedule_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    """Move a pending one-time job, or change a recurring job's schedule; the id stays."""
    deps = dependencies.current()
    settings = deps.settings()
    try:
        change = ScheduleChange.model_validate(read_json_body(request, settings.max_request_bytes))
    except ValidationError as error:
        raise validation_problem("the change is not valid", field_errors(error)) from None
    given = change.model_dump(exclude_none=True)
    if not given:
        raise validation_problem(
            "nothing to change",
            [FieldError(loc=["exec_at"], msg="give the fields to change", type="empty")],
        )
    generation = uuid.uuid4().hex

    def rescheduled(record: JobRecord) -> JobRecord:
        allowed = _RECURRING_FIELDS if record.recurrence is not None else _ONE_TIME_FIELDS
        for name in given:
            if name not in allowed:
                kind = "a recurring" if record.recurrence is not None else "a one-time"
                raise _invalid(name, f"{name} cannot be changed on {kind} job")
        if record.state not in ("pending", "paused"):
            raise _conflict(record.state, "changed")
        first = _validated_first_run(
            record, given, settings.min_lead_seconds, settings.max_horizon_days
        )
        return record.model_copy(
            update={
                "generation": generation if record.state == "pending" else record.generation,
                "exec_at": first.at,
                "recurrence": first.recurrence,
                "attempts": 0,
                "updated_at": deps.clock(),
            }
        )

    before, after = await _swap(transaction_id, rescheduled, client=client)
    if after.generation != before.generation:
        await stop_quietly(client, before.instance_id)
    await _log(after, "rescheduled", f"rescheduled; next run {format_utc(after.exec_at)}")
    return json_response(status_view(after))


def _validated_first_run(
    record: JobRecord, given: dict[str, Any], min_lead_seconds: int, max_horizon_days: int
) -> FirstRun:
    """The create-time validation, on the record's schedule with the changes applied."""
    if record.recurrence is not None:
        schedule = {**record.recurrence.model_dump(mode="json", exclude_none=True), **given}
        # max_runs counts every run of the job, the ones already done included.
        if "max_runs" in given and given["max_runs"] <= record.runs:
            raise _invalid("max_runs", f"max_runs must be more than the {record.runs} runs done")
    else:
        when = {"exec_at", "exec_local", "delay"} & set(given)
        schedule = {
            key: value
            for key, value in given.items()
            if key in when or key in ("timezone", "dst_gap", "dst_fold")
        }
        if not when:
            raise _invalid("exec_at", "give the new exec_at, exec_local or delay")
    try:
        request = ScheduleRequest.model_validate(
            {**schedule, "prompt_type": record.prompt_type, "payload": {}}
        )
        first = first_run(
            request,
            dependencies.current().clock(),
            min_lead_seconds=min_lead_seconds,
            max_horizon_days=max_horizon_days,
        )
    except ValidationError as error:
        raise validation_problem("the change is not valid", field_errors(error)) from None
    except ScheduleError as error:
        raise _invalid(error.field, str(error), error.rule) from None
    return first


async def _swap(
    transaction_id: str,
    change: Change,
    client: df.DurableOrchestrationClient | None = None,
    *,
    cancelled_found: bool = False,
) -> tuple[JobRecord, JobRecord]:
    """Apply `change` to the record by compare-and-swap; (before, after).

    The index row at the new time is written before the swap (the index lists every live
    job) and the old one dropped after it, by its ETag, so a concurrent change's row stays;
    a change that ends the job drops its row, and one that fails it (a resume with no run
    left) writes its failed-index row first, as an attempt's outcome does.
    With `client`, a record left pending under a new generation has its new orchestration
    started once the swap has landed (so it can never come due before the record names it).
    A cancelled job reads as not found, unless `cancelled_found` (then `change` decides).
    """
    checked_id(transaction_id)
    deps = dependencies.current()
    store = deps.job_store(deps.settings())
    try:
        for _ in range(MAX_SWAPS):
            stored = await asyncio.to_thread(read_job, store, transaction_id)
            if isinstance(stored, UnreadableRow):
                raise unreadable_conflict(stored)
            if stored is None or (stored.record.state == "cancelled" and not cancelled_found):
                raise not_found(f"no job with transaction id {transaction_id}")
            after = change(stored.record)
            if after == stored.record:
                return stored.record, after
            live = after.state in LIVE_STATES
            moved = _row_key(after) != _row_key(stored.record)
            old_row = await asyncio.to_thread(store.row_etag, stored.record)
            new_row = await asyncio.to_thread(store.index, after) if live else None
            if live and stored.record.state not in LIVE_STATES and after.labels:
                # Live again (a replay): findable by its labels before the record says so.
                await asyncio.to_thread(store.index_labels, [after])
            label_rows = await asyncio.to_thread(label_rows_quietly, store, after)
            failure_row = (
                await asyncio.to_thread(store.index_failure, after)
                if after.failed_at is not None and after.failed_at != stored.record.failed_at
                else None
            )
            try:
                await asyncio.to_thread(store.replace, stored, after)
            except Exception as error:
                await asyncio.to_thread(_undo_rows, store, after, moved, new_row, failure_row)
                if isinstance(error, StaleRecord):
                    continue
                raise
            if (moved or not live) and old_row is not None:
                await asyncio.to_thread(unindex_quietly, store, stored.record, old_row)
            await asyncio.to_thread(drop_label_rows_quietly, store, label_rows)
            if client is not None and after.state == "pending":
                await _start_or_say(client, after, stored.record)
            return stored.record, after
    except ProblemError:
        raise
    except Exception:
        log.exception("changing %s failed", transaction_id)
        raise backend_unavailable("accept the change; nothing was changed or try again") from None
    raise backend_unavailable("settle the change: the job kept changing; try again")


async def _start_or_say(
    client: df.DurableOrchestrationClient, after: JobRecord, before: JobRecord
) -> None:
    """Start the orchestration of a record's new generation, after its swap; if it cannot
    be started, a 503 that says to send the change again (a resume or PATCH then starts it).

    A start that fails because the orchestration already runs is a success: once the swap
    has landed, a concurrent request (a second replay, a resume) may start it first.
    """
    if after.generation == before.generation:
        return
    try:
        await start_orchestration(client, after)
    except Exception:
        if await orchestration_runs(client, after):
            return
        log.exception("starting %s after a change failed", after.instance_id)
        raise backend_unavailable(
            "start the changed job: the change is saved; send the request again to start it"
        ) from None


def _undo_rows(
    store: TableJobStore,
    ours: JobRecord,
    moved: bool,
    etag: str | None,
    failure_etag: str | None,
) -> None:
    """After a swap that did not land: our failed-index row goes, and our new due row (only
    the version we wrote), or, where it overwrote the standing record's row (same key), that
    row comes back."""
    if failure_etag:
        forget_failure_quietly(store, ours.transaction_id, ours.failed_at, failure_etag)
    if etag is None:
        return
    try:
        if moved:
            store.unindex(ours.transaction_id, ours.exec_at, etag or None)
            return
        current = store.get(ours.transaction_id)
        if current is not None and current.record.state in LIVE_STATES:
            store.index(current.record)
    except Exception:
        log.warning("could not undo an index row of %s", ours.transaction_id, exc_info=True)


def _row_key(record: JobRecord) -> tuple[str, str]:
    return due_keys(record.exec_at, record.transaction_id)


async def _log(record: JobRecord, kind: Any, message: str) -> None:
    await record_lifecycle(lifecycle_entry(record.transaction_id, kind, record.updated_at, message))


def _conflict(verdict: str, action: str) -> ProblemError:
    details = {
        "firing": "an attempt of this job is running now; try again once it has its outcome",
        "not-recurring": "only recurring jobs can be paused and resumed",
        "not-paused": "the job is not paused",
        "replaying": (
            "the job's replay is running: a replay is one run and cannot be paused (a delete"
            " cancels it)"
        ),
    }
    return problem(
        409,
        "job-state",
        "The job cannot be " + action,
        details.get(verdict, f"the job is {verdict}: it cannot be {action}"),
    )


def _invalid(field: str, message: str, rule: str = "value_error") -> ProblemError:
    return validation_problem(message, [FieldError(loc=[field], msg=message, type=rule)])
