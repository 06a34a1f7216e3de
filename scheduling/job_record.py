"""A job as the job store keeps it, and the moves between its states.

Whole at ~475 lines: the record and every move between its states, read together (one
move's outcome is another's precondition).

Every move is decided here, as a pure function of the record read; the store then writes
it only if the record is still the one read (its ETag), so a fire and a delete that meet
are settled by one compare-and-swap: whichever writes first wins, the other sees why.
"""

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduling.attempt_history import AttemptSummary, one_line, with_finished, with_started
from scheduling.flow_control import FlowLimits
from scheduling.labels import Labels
from scheduling.models import CallbackKind, UtcDatetime
from scheduling.recurrence import Recurrence, next_fire_at, upcoming_run
from scheduling.retry import RetryPolicy
from scheduling.sealing import SealedPayload
from scheduling.timing import format_utc

JobState = Literal["pending", "firing", "retrying", "paused", "succeeded", "failed", "cancelled"]
# Listed and wiped; the others are outcomes.
LIVE_STATES: frozenset[JobState] = frozenset({"pending", "firing", "retrying", "paused"})
CLAIMABLE_STATES: frozenset[JobState] = frozenset({"pending", "retrying"})
CANCELLABLE_STATES: frozenset[JobState] = frozenset({"pending", "retrying", "paused"})


class JobRecord(BaseModel):
    """One job: its schedule and state in clear, its payload sealed."""

    model_config = ConfigDict(frozen=True)

    transaction_id: str
    # New for every incarnation of an id: an orchestration of an earlier one (a job deleted
    # and re-created under the same Idempotency-Key) can never act on this one.
    generation: str
    state: JobState
    prompt_type: str
    exec_at: UtcDatetime
    accepted_at: UtcDatetime
    updated_at: UtcDatetime
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    attempts: int = 0
    next_attempt_at: UtcDatetime | None = None
    fired_at: UtcDatetime | None = None
    # What may be shown of the payload in clear (e.g. "POST https://hooks.example.com").
    destination: str | None = None
    # The flow key and limits its attempts go through (in clear: the orchestrator needs
    # them without unsealing anything); None: no flow control (a log.append).
    flow: FlowLimits | None = None
    last_outcome: dict[str, Any] | None = None
    request_fingerprint: str | None = None
    # What cancelled the job: its log entry says so. "ended": a resume found no run left in
    # the schedule of a job that had never run.
    cancelled_by: Literal["delete", "wipe", "filter", "ended"] | None = None
    # A recurring job: its schedule, and its runs so far. `exec_at` is the next run's time.
    recurrence: Recurrence | None = None
    runs: int = 0
    skipped_runs: int = 0
    last_run: dict[str, Any] | None = None
    # The last attempts (of this and earlier runs), oldest first: when each was due and fired.
    attempt_history: list[AttemptSummary] = Field(default_factory=list)
    # When the job's last run failed (the job is a dead letter); its key in the failed index.
    failed_at: UtcDatetime | None = None
    # When the job was last replayed: the run at that time is the replay's.
    replayed_at: UtcDatetime | None = None
    sealed_payload: SealedPayload
    # Outcome callbacks: their URLs redacted (what may be shown), and sealed (what is sent).
    callbacks: dict[CallbackKind, str] | None = None
    sealed_callbacks: SealedPayload | None = None
    # Set at creation, never changed (the label index keys the job by them); in clear.
    labels: Labels = Field(default_factory=dict)

    def sealing_context(self) -> bytes:
        """What the payload's ciphertext is bound to: it cannot be moved to another job, nor
        to another incarnation of this one."""
        return sealing_context(self.transaction_id, self.accepted_at)

    def callbacks_sealing_context(self) -> bytes:
        return callbacks_sealing_context(self.transaction_id, self.accepted_at)

    @property
    def instance_id(self) -> str:
        return instance_id(self.transaction_id, self.generation)


def sealing_context(transaction_id: str, accepted_at: datetime) -> bytes:
    """The associated data of a job's sealed payload: its id and its acceptance time.

    Not the generation: a job moved, paused, resumed or replayed (a new generation) keeps its
    payload. The acceptance time is what tells one incarnation of an id from the next (a job
    deleted and created again under its Idempotency-Key), as for its callbacks' runs.
    """
    return f"job/{transaction_id}/accepted/{_instant(accepted_at)}".encode()


def callbacks_sealing_context(transaction_id: str, accepted_at: datetime) -> bytes:
    # Not the payload's: neither ciphertext opens in the other's place.
    return f"job/{transaction_id}/accepted/{_instant(accepted_at)}/callbacks".encode()


def _instant(moment: datetime) -> str:
    # Fixed width, to the microsecond, as the store keeps it.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def instance_id(transaction_id: str, generation: str) -> str:
    """The orchestration of one generation of a job: a new generation (a job re-created
    under its Idempotency-Key, moved, resumed) starts a new one while the old may still be
    winding down."""
    return f"{transaction_id}.{generation}"


class JobRun(BaseModel):
    """An orchestration's input: which job to wait for, never what it sends."""

    transaction_id: str
    generation: str
    exec_at: UtcDatetime
    # Where an episode that continued as new in the middle of a run goes on from.
    attempt: int = Field(default=1, ge=1)
    store_failures: int = Field(default=0, ge=0)
    flow: FlowLimits | None = None
    # A callback order (ids and the run's gist) given up while the job log was down too:
    # written in the log once an activity of a later episode succeeds.
    unlogged_callback: dict[str, Any] | None = None


class AttemptOrder(BaseModel):
    """The activity's input: run attempt `attempt` of the run due at `due_at`, if still due."""

    transaction_id: str
    generation: str
    due_at: UtcDatetime
    attempt: int = Field(ge=1)
    # When the flow slot held for it is reclaimed: an attempt that could not end by then
    # does not start. None: no slot (no flow control, or its entity did not answer).
    slot_ends_at: UtcDatetime | None = None
    # The job's flow key did not answer in time: it goes without a slot (logged).
    flow_unanswered: bool = False


class EndedRun(BaseModel):
    """How a run ended, as its outcome callback tells it. The report carries it to the
    callback's orders, so that the callback says what it must even after the job has been
    replayed or changed (its record then describes another run)."""

    state: Literal["succeeded", "failed"]
    attempts: int
    # The gist of its last attempt's outcome (ok, status_code, one line of the already
    # redacted error, elapsed_ms): never headers or a body.
    outcome: dict[str, bool | int | float | str]
    # A recurring job's next run, when there is one.
    next_fire_at: UtcDatetime | None = None
    # Which incarnation of the job (its acceptance time): a job deleted and created again
    # under the same id is another job, whose callbacks are not this run's.
    accepted_at: UtcDatetime


# The attempt did not start: it waited so long to run that its flow slot may be another's.
SLOT_LAPSED = "slot-lapsed"


class AttemptReport(BaseModel):
    """What the activity tells the orchestration: ids, state and times, never the payload.

    `gone`: no record of this generation exists any more (deleted, or replaced).
    `slot-lapsed`: nothing was done; hold a new slot and run the attempt again.
    """

    state: JobState | Literal["gone", "slot-lapsed"]
    attempt: int
    next_attempt_at: UtcDatetime | None = None
    # When `state` is pending: the time of the job's next run (a recurring job's next one).
    next_run_at: UtcDatetime | None = None
    # When the run has just ended and the job has a callback for its outcome: which one,
    # and what it tells.
    callback: CallbackKind | None = None
    ended_run: EndedRun | None = None


ClaimVerdict = Literal["claimed", "resumed", "cancelled", "decided", "gone"]


def claim(
    record: JobRecord | None, generation: str, due_at: datetime, attempt: int, now: datetime
) -> tuple[ClaimVerdict, JobRecord | None]:
    """Whether attempt `attempt` may run, and the record to write if it may.

    - claimed: the job was pending or retrying; write the returned record (now firing).
    - resumed: this attempt's own claim stands (the activity is being re-run after its
      worker died): run it again, nothing to write.
    - decided: this attempt already has an outcome (re-run after it was recorded), or its
      run is over, or the job is paused: the record says what comes next.
    - cancelled / gone: deleted, wiped or replaced: do not run.
    """
    if record is None or record.generation != generation:
        return "gone", None
    if record.state == "cancelled":
        return "cancelled", None
    if record.exec_at != due_at:
        return "decided", None
    if record.state in CLAIMABLE_STATES and record.attempts == attempt - 1:
        # This attempt was due at the run's time, or (a retry) at the time its wait ended.
        attempt_due = record.next_attempt_at if attempt > 1 and record.next_attempt_at else due_at
        claimed = record.model_copy(
            update={
                "state": "firing",
                "attempts": attempt,
                "fired_at": now,
                "next_attempt_at": None,
                "updated_at": now,
                "attempt_history": with_started(record.attempt_history, attempt, attempt_due, now),
            }
        )
        return "claimed", claimed
    if record.state == "firing" and record.attempts == attempt:
        return "resumed", None
    return "decided", None


def finish_attempt(
    record: JobRecord, outcome: dict[str, Any], retry_after: timedelta | None, now: datetime
) -> JobRecord:
    """The record once the running attempt has `outcome`: retrying when `retry_after` is
    set; else the run is over, and a recurring job waits for its next run, if any.

    A job whose run failed with no run left to come is a dead letter: `failed_at` says when.
    """
    history = with_finished(record.attempt_history, record.attempts, outcome, now)
    if not outcome.get("ok") and retry_after is not None:
        return record.model_copy(
            update={
                "state": "retrying",
                "last_outcome": outcome,
                "next_attempt_at": now + retry_after,
                "updated_at": now,
                "attempt_history": history,
            }
        )
    state: JobState = "succeeded" if outcome.get("ok") else "failed"
    ended = record.model_copy(
        update={
            "state": state,
            "last_outcome": outcome,
            "next_attempt_at": None,
            "updated_at": now,
            "attempt_history": history,
            "failed_at": now if state == "failed" else None,
        }
    )
    if record.recurrence is None:
        return ended
    runs = record.runs + 1
    last_run = {
        "due_at": format_utc(record.exec_at),
        "fired_at": format_utc(record.fired_at) if record.fired_at else None,
        "state": state,
        "attempts": record.attempts,
        # The gist of its last attempt's outcome; the whole of it is `last_outcome`.
        "outcome": {key: outcome[key] for key in ("ok", "status_code", "error") if key in outcome},
    }
    following = upcoming_run(record.recurrence, record.exec_at, now, runs)
    if following.at is None:
        return ended.model_copy(update={"runs": runs, "last_run": last_run})
    return ended.model_copy(
        update={
            "state": "pending",
            "exec_at": following.at,
            "attempts": 0,
            "runs": runs,
            "skipped_runs": record.skipped_runs + following.skipped,
            "last_run": last_run,
            # Its schedule goes on: the failed run is in `last_run`, not a dead letter.
            "failed_at": None,
        }
    )


CancelVerdict = Literal["cancelled", "firing", "already-cancelled", "ended"]


def cancel(
    record: JobRecord, now: datetime, by: Literal["delete", "wipe", "filter"] = "delete"
) -> tuple[CancelVerdict, JobRecord | None]:
    """A delete of a job: cancelled (write the returned record) unless an attempt is running."""
    if record.state in CANCELLABLE_STATES:
        return "cancelled", record.model_copy(
            update={
                "state": "cancelled",
                "next_attempt_at": None,
                "updated_at": now,
                "cancelled_by": by,
            }
        )
    if record.state == "firing":
        return "firing", None
    if record.state == "cancelled":
        return "already-cancelled", None
    return "ended", None


def report_of(record: JobRecord) -> AttemptReport:
    callback = due_callback(record)
    return AttemptReport(
        state=record.state,
        attempt=record.attempts,
        next_attempt_at=record.next_attempt_at,
        next_run_at=record.exec_at if record.state == "pending" else None,
        callback=callback,
        ended_run=ended_run(record) if callback is not None else None,
    )


# What of an outcome a callback shows.
_OUTCOME_GIST = ("ok", "status_code", "error", "elapsed_ms")


def ended_run(record: JobRecord, due_at: datetime | None = None) -> EndedRun | None:
    """The run that has just ended (the one due at `due_at`, when given), or None while a
    run is under way or when the record no longer describes that run."""
    if record.state in ("succeeded", "failed") and due_at in (None, record.exec_at):
        state, attempts, outcome = record.state, record.attempts, record.last_outcome or {}
        next_fire_at = None
    elif record.state == "pending" and record.last_run is not None:
        last = record.last_run
        if last.get("state") not in ("succeeded", "failed"):
            return None
        if due_at is not None and last.get("due_at") != format_utc(due_at):
            return None
        state, attempts, outcome = last["state"], last.get("attempts", 0), last.get("outcome") or {}
        next_fire_at = record.exec_at
    else:
        return None
    gist = {key: outcome[key] for key in _OUTCOME_GIST if isinstance(outcome.get(key), _GIST_TYPES)}
    if isinstance(gist.get("error"), str):
        gist["error"] = one_line(str(gist["error"]))
    return EndedRun(
        state=state,
        attempts=attempts,
        outcome=gist,
        next_fire_at=next_fire_at,
        accepted_at=record.accepted_at,
    )


_GIST_TYPES = (bool, int, float, str)


def ended_run_state(record: JobRecord) -> JobState | None:
    """How the run that just ended ended (a recurring job is pending its next run by then);
    None while a run is under way or the job is paused or cancelled."""
    if record.state in ("succeeded", "failed"):
        return record.state
    if record.state == "pending" and record.last_run is not None:
        ended = record.last_run.get("state")
        return ended if ended in ("succeeded", "failed") else None
    return None


def due_callback(record: JobRecord) -> CallbackKind | None:
    """The callback to deliver for the run that just ended, if the job has one for it."""
    ended = ended_run_state(record)
    if ended is None or not record.callbacks:
        return None
    kind: CallbackKind = "on_success" if ended == "succeeded" else "on_failure"
    return kind if kind in record.callbacks else None


PauseVerdict = Literal["paused", "not-recurring", "replaying", "firing", "already-paused", "ended"]


def pause(record: JobRecord, now: datetime) -> tuple[PauseVerdict, JobRecord | None]:
    """Stop a recurring job's runs until it is resumed; a running attempt is not cut off.

    A replay is not paused: it is one run, not a schedule, and a resume goes on with the
    schedule (whose runs may all be done), never with the replay's run.
    """
    if record.recurrence is None:
        return "not-recurring", None
    if is_replaying(record):
        return "replaying", None
    if record.state in CLAIMABLE_STATES:
        return "paused", record.model_copy(
            update={"state": "paused", "next_attempt_at": None, "updated_at": now}
        )
    if record.state == "firing":
        return "firing", None
    if record.state == "paused":
        return "already-paused", None
    return "ended", None


ResumeVerdict = Literal["resumed", "not-paused", "ended"]


def resume(
    record: JobRecord, now: datetime, generation: str, earliest: datetime
) -> tuple[ResumeVerdict, JobRecord | None]:
    """A paused job, pending again at its first run at or after `earliest` (missed runs are
    not made up), under a new generation: whatever the old orchestration still does is void.
    `earliest` is a create's (scheduling/timing.py's earliest_run: MIN_LEAD_SECONDS from now).

    "ended": its schedule has no run left (`end_at` passed while it was paused): it ends now,
    as a schedule that runs out does, in its last run's state (a failed one is a dead letter,
    which a replay can run again); one that never ran is cancelled. Left paused, no route
    could ever move it on.
    """
    if record.state != "paused" or record.recurrence is None:
        return "not-paused", None
    following = next_fire_at(record.recurrence, earliest - timedelta(microseconds=1), record.runs)
    if following is None:
        return "ended", ended_schedule(record, now)
    return "resumed", record.model_copy(
        update={
            "state": "pending",
            "generation": generation,
            "exec_at": following,
            "attempts": 0,
            "updated_at": now,
        }
    )


def ended_schedule(record: JobRecord, now: datetime) -> JobRecord:
    """A paused recurring job whose schedule has no run left, ended in its last run's state."""
    last = record.last_run.get("state") if record.last_run else None
    ending: dict[str, Any] = {"next_attempt_at": None, "updated_at": now}
    if last == "failed":
        return record.model_copy(update={**ending, "state": "failed", "failed_at": now})
    if last == "succeeded":
        return record.model_copy(update={**ending, "state": "succeeded"})
    return record.model_copy(update={**ending, "state": "cancelled", "cancelled_by": "ended"})


ReplayVerdict = Literal["replayed", "replaying", "not-failed"]


def is_replaying(record: JobRecord) -> bool:
    """Whether the job's current run is a replay that has not ended yet."""
    return (
        record.replayed_at is not None
        and record.exec_at == record.replayed_at
        and record.state in ("pending", "firing", "retrying")
    )


def replay(
    record: JobRecord, now: datetime, generation: str
) -> tuple[ReplayVerdict, JobRecord | None]:
    """A failed job, pending again at `now` as a new run under a new generation (a new
    orchestration; its attempts count from 1 again). A job whose replay is still running is
    left as it is ("replaying"): a second click makes no second run. Anything else that has
    not failed cannot be replayed.

    A recurring job only fails for good on its last run: its replay runs once, counts as a
    run, and the job then ends in that run's outcome (its schedule has no run left).
    """
    if is_replaying(record):
        return "replaying", None
    if record.state != "failed":
        return "not-failed", None
    return "replayed", record.model_copy(
        update={
            "state": "pending",
            "generation": generation,
            "exec_at": now,
            "attempts": 0,
            "next_attempt_at": None,
            "failed_at": None,
            "replayed_at": now,
            "updated_at": now,
        }
    )
