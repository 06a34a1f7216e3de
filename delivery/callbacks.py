"""Outcome callbacks: when a run of a job ends, POST a signed summary of it to the URL the job
gave for that outcome (`callbacks.on_success` / `on_failure`).

The orchestration asks for each delivery attempt with ids only (CallbackOrder); this module
reads the job's record, unseals the URL, sends, logs, and says whether to try again. A
callback never changes the job's record: its state stays the one the run ended with.
"""

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from delivery.prompts import FiringContext
from delivery.prompts.http_call import HttpCallOutcome, HttpCallPayload, send_signed
from scheduling.job_record import EndedRun, JobRecord, ended_run
from scheduling.models import CallbackKind, UtcDatetime
from scheduling.retry import next_attempt_delay
from scheduling.sealing import Sealer, SealingError, SealingUnavailable
from scheduling.timing import format_utc
from scheduling.webhook_signing import message_id
from storage.job_log import JobLogEntry
from storage.job_log.entries import make_entry_id
from storage.job_log.resilient import AppendError, append_with_retry
from storage.job_store import TableJobStore, UnreadableRecord

# What a summary shows of the run's last outcome: the gist, never headers or the body.
_OUTCOME_GIST = ("ok", "status_code", "error", "elapsed_ms")
log = logging.getLogger(__name__)


class CallbackOrder(BaseModel):
    """The activity's input: deliver attempt `attempt` of the `callback` of the run due at
    `due_at`, which ended as `run` says. Ids, times and the outcome's gist only: the URL
    stays sealed in the job's record."""

    transaction_id: str
    generation: str
    due_at: UtcDatetime
    callback: CallbackKind
    attempt: int = Field(ge=1)
    # Absent only in orders of orchestrations started before it was carried: the run is
    # then read from the record, if it still describes it.
    run: EndedRun | None = None


class CallbackReport(BaseModel):
    """What the activity tells the orchestration: delivered, or when to try again (if at all)."""

    delivered: bool
    next_attempt_at: UtcDatetime | None = None


def callback_message_id(order: CallbackOrder) -> str:
    """The callback's own `webhook-id`: the same on each of its retries, never the run's."""
    return message_id(
        "callback", order.transaction_id, order.generation, format_utc(order.due_at), order.callback
    )


def deliver_callback(
    order: CallbackOrder,
    store: TableJobStore,
    sealer: Sealer,
    clock: Callable[[], datetime],
    context_for: Callable[[JobRecord], FiringContext],
) -> CallbackReport:
    """One delivery attempt; raises only when the store or the vault did not answer.

    The run's outcome comes with the order, so a replay or a change of the job since (a new
    generation) does not stop it: the run it reports did end that way. Only the job's URLs
    and retry policy are read from its record.
    """
    try:
        stored = store.get(order.transaction_id)
    except UnreadableRecord as unreadable:
        # Nothing in it can be trusted, its URL least: given up, not asked for again.
        log.error("callback of %s abandoned: %s", order.transaction_id, unreadable)
        return CallbackReport(delivered=False)
    record = stored.record if stored else None
    if record is None:
        log.warning("callback of %s abandoned: the job is gone", order.transaction_id)
        return CallbackReport(delivered=False)
    context = context_for(record)
    run = order.run
    if run is None and record.generation == order.generation:
        run = ended_run(record, order.due_at)
    if run is None or run.accepted_at != record.accepted_at or record.sealed_callbacks is None:
        # Another job under the same id now (deleted and created again), or the old
        # orchestration's record moved on without saying how its run ended.
        _log(context, order, False, "abandoned: the job was deleted, replaced or changed")
        return CallbackReport(delivered=False)
    try:
        urls = json.loads(
            sealer.unseal(record.sealed_callbacks, record.callbacks_sealing_context())
        )
    except SealingUnavailable:
        raise  # the vault is down or busy: the orchestration asks again later
    except SealingError:
        _log(context, order, False, "its URL could not be unsealed: its key is not available")
        return CallbackReport(delivered=False)
    url = urls.get(order.callback)
    if not isinstance(url, str):
        _log(context, order, False, "abandoned: the job no longer has this callback")
        return CallbackReport(delivered=False)
    summary = _summary(record, order, run, clock())
    payload = HttpCallPayload.model_validate({"method": "POST", "url": url, "json": summary})
    # A callback may be sent again after any failure: its webhook-id lets the receiver
    # drop a duplicate, and a lost outcome is worse than a repeated one.
    outcome = send_signed(payload, context, message_id=callback_message_id(order), may_repeat=True)
    delay = next_attempt_delay(
        record.retry, record.transaction_id, order.attempt, outcome.model_dump(mode="json")
    )
    retry_at = clock() + delay if delay is not None else None
    if retry_at is not None and run.next_fire_at is not None and run.next_fire_at <= retry_at:
        retry_at = None  # a recurring job's next run is due: its own outcome comes next
    _log(context, order, outcome.ok, _described(outcome, retry_at), outcome)
    return CallbackReport(delivered=outcome.ok, next_attempt_at=retry_at)


def _summary(
    record: JobRecord, order: CallbackOrder, run: EndedRun, now: datetime
) -> dict[str, Any]:
    """The callback's body, in the Standard Webhooks shape `{type, timestamp, data}`; what it
    shows of the job is what its status shows, the payload never."""
    return {
        "type": f"job.{run.state}",
        "timestamp": format_utc(now),
        "data": {
            "transaction_id": record.transaction_id,
            "prompt_type": record.prompt_type,
            "destination": record.destination,
            "due_at": format_utc(order.due_at),
            "state": run.state,
            "attempts": run.attempts,
            "outcome": run.outcome,
            # A recurring job's next run, when there is one.
            "next_fire_at": format_utc(run.next_fire_at) if run.next_fire_at else None,
        },
    }


def log_abandoned(order: CallbackOrder, context: FiringContext) -> bool:
    """The job log's word that attempt `order.attempt` of the callback never ran: the job
    store did not answer for too long, or until the job's next run came due. Whether the
    log took it."""
    return _log(context, order, False, "abandoned: the job store did not answer") is None


def _described(outcome: HttpCallOutcome, retry_at: datetime | None) -> str:
    if outcome.ok:
        return "delivered"
    again = f"; trying again at {format_utc(retry_at)}" if retry_at else "; giving up"
    return f"failed: {outcome.error}{again}"


def _log(
    context: FiringContext,
    order: CallbackOrder,
    ok: bool,
    what: str,
    outcome: HttpCallOutcome | None = None,
) -> AppendError | None:
    fields: dict[str, Any] = {"callback": order.callback, "attempt": order.attempt, "ok": ok}
    if outcome is not None:
        fields |= {key: getattr(outcome, key) for key in _OUTCOME_GIST}
    entry = JobLogEntry(
        transaction_id=order.transaction_id,
        # After the run's attempts ("01-…" to "10-…"): "cb-" sorts after digits.
        entry_id=make_entry_id(order.due_at, f"cb-{order.callback}-{order.attempt:02d}"),
        timestamp=context.clock(),
        kind="callback",
        level="info" if ok else "warning",
        message=f"callback {order.callback} {what}",
        fields=fields,
    )
    error = append_with_retry(context.job_log, entry)
    if error is not None:
        log.warning("the callback entry of %s was not stored: %s", order.transaction_id, error)
    return error
