"""What the API shows of a job record: an allowlist of fields, never the sealed payload."""

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduling.attempt_history import AttemptSummary
from scheduling.job_record import JobRecord, JobState
from scheduling.models import UtcDatetime, fields_of
from scheduling.redaction import redact_url
from scheduling.timing import format_utc
from storage.job_rows import UnreadableRow

# In clear and safe to show: ids, schedule, state, and the payload's method and origin.
_LISTED = (
    "transaction_id",
    "state",
    "prompt_type",
    "exec_at",
    "attempts",
    "next_attempt_at",
    "labels",
)
_STATUS = (
    *_LISTED,
    # Up to MAX_ATTEMPT_HISTORY entries: shown one job at a time (the status, the failed
    # list); a listing page of hundreds of jobs shows each one's last attempt only.
    "attempt_history",
    "accepted_at",
    "updated_at",
    "fired_at",
    "retry",
    "destination",
    "flow",
    "last_outcome",
    "recurrence",
    "runs",
    "skipped_runs",
    "last_run",
    "failed_at",
    "replayed_at",
    "callbacks",
)


# What a job's orchestration says while it waits for its flow key (blueprints/flow_control.py
# sets it; it is not imported from there, which would load the Durable SDK for a route).
WAITING_FOR_A_SLOT = "waiting for a slot"
_WAIT_FIELDS = ("phase", "flow_key", "attempt", "position", "start_at")


def may_wait_for_a_slot(record: JobRecord, now: datetime) -> bool:
    """Whether the job could be waiting for a slot: due, not yet claimed, flow-controlled."""
    if record.flow is None or record.state not in ("pending", "retrying"):
        return False
    due = record.next_attempt_at if record.state == "retrying" else record.exec_at
    return due is not None and due <= now


def slot_wait_view(custom_status: Any) -> dict[str, Any] | None:
    """The orchestration's own word that it waits for a slot, allowlisted; else None."""
    if not isinstance(custom_status, dict) or custom_status.get("phase") != WAITING_FOR_A_SLOT:
        return None
    return {name: custom_status[name] for name in _WAIT_FIELDS if name in custom_status}


_NEXT_FIRE_AT = "when the job next fires; null once it has ended or while it is paused"


class ListedJob(fields_of("ListedJobFields", JobRecord, _LISTED)):  # type: ignore[misc]
    """A job as one row of the listing."""

    next_fire_at: UtcDatetime | None = Field(description=_NEXT_FIRE_AT)
    last_attempt: AttemptSummary | None = Field(
        description="the newest entry of the job's attempt history (its status has them all)"
    )


class SlotWait(BaseModel):
    """What the status shows while a due job waits for its flow key's slot (or start time)."""

    model_config = ConfigDict(extra="forbid")

    phase: Literal["waiting for a slot"]
    flow_key: str
    attempt: int
    position: int | None = Field(default=None, description="its place in the key's queue")
    start_at: UtcDatetime | None = Field(
        default=None, description="granted: when the key's rate lets it start"
    )


class JobStatus(fields_of("JobStatusFields", JobRecord, _STATUS)):  # type: ignore[misc]
    """A job as its status shows it: an allowlist of its record's fields, never its payload."""

    next_fire_at: UtcDatetime | None = Field(description=_NEXT_FIRE_AT)
    orchestration: dict[str, Any] | None = Field(
        default=None,
        description="with `history=true` only: the orchestration's durable status (ids, "
        "times, states); null when it was purged or never started",
    )
    waiting: SlotWait | None = Field(
        default=None, description="only while the job is due and waits for its flow key"
    )


def next_fire_at(record: JobRecord) -> str | None:
    """When the job's next run is due: none once it has ended, or while it is paused."""
    if record.state in ("pending", "firing", "retrying"):
        return format_utc(record.exec_at)
    return None


def listed_view(record: JobRecord) -> dict[str, Any]:
    """A job as one row of the listing: its last attempt, not its whole history."""
    view = record.model_dump(mode="json", include=set(_LISTED))
    history = record.attempt_history
    last_attempt = history[-1].model_dump(mode="json") if history else None
    return {**view, "next_fire_at": next_fire_at(record), "last_attempt": last_attempt}


def status_view(record: JobRecord) -> dict[str, Any]:
    """A job as its status shows it; `last_outcome` is what the activity chose to keep.

    URLs the job did not choose to show (its callbacks, a Location it was answered with) go
    through redact_url again: a record stored under an older, looser rule shows no more.
    """
    view = record.model_dump(mode="json", include=set(_STATUS))
    if view.get("callbacks"):
        view["callbacks"] = {kind: redact_url(url) for kind, url in view["callbacks"].items()}
    headers = (view.get("last_outcome") or {}).get("headers")
    if isinstance(headers, dict):
        view["last_outcome"]["headers"] = {
            name: redact_url(value)
            if name.lower() == "location" and isinstance(value, str)
            else value
            for name, value in headers.items()
        }
    return {**view, "next_fire_at": next_fire_at(record)}


class UnreadableJob(BaseModel):
    """A job whose record cannot be read (corrupted, cut short, of another version), or whose
    payload cannot be opened (sealed under a key the app no longer holds): listed as such so
    that one bad row never fails a page. DELETE ends it without opening it."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: str
    unreadable: Literal[True]
    why: str = Field(description="what is wrong with it, in one line (never its content)")
    state: JobState | None = Field(description="its state, if its row still says it readably")
    prompt_type: str | None
    exec_at: UtcDatetime | None


def unreadable_view(row: UnreadableRow) -> dict[str, Any]:
    return {
        "transaction_id": row.transaction_id,
        "unreadable": True,
        "why": row.why,
        "state": row.state,
        "prompt_type": row.prompt_type,
        "exec_at": format_utc(row.exec_at) if row.exec_at else None,
    }


# Jobs whose payload may still be opened: a run to come, or (failed) a replay.
_MAY_OPEN = frozenset({"pending", "firing", "retrying", "paused", "failed"})


def sealed_under_absent_key(record: JobRecord, holds: Callable[[str], bool]) -> str | None:
    """Why the job's payload (or its callback URLs) cannot be opened when it fires, if they
    are sealed under a key `holds` says the app does not have; None otherwise, and for a job
    that will never open them again."""
    if record.state not in _MAY_OPEN:
        return None
    sealed_parts = (("payload", record.sealed_payload), ("callback URLs", record.sealed_callbacks))
    for what, sealed in sealed_parts:
        if sealed is not None and not holds(sealed.key_id):
            return (
                f"its {what} is sealed under the key {sealed.key_id[:120]!r}, which this app "
                "does not hold: put it back (SEALING_KEYS, Key Vault) or delete the job"
            )
    return None


def failed_view(record: JobRecord) -> dict[str, Any]:
    """A job as the failed list shows it: its status, with when it failed and its attempts."""
    return status_view(record)
