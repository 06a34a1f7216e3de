"""A job's attempts as the dashboard shows them: when each was due, fired, how late, outcome.

The record's `attempt_history` (the last attempts, each with its times) is the source; a
record written before it existed yields what its own fields say of its latest attempt.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scheduling.job_record import JobRecord
from scheduling.timing import parse_exec_at


@dataclass(frozen=True)
class AttemptRow:
    attempt: int
    due_at: datetime | None
    fired_at: datetime | None
    lateness_ms: float | None
    finished_at: datetime | None
    ok: bool | None  # None: no outcome yet (firing)
    status_code: int | None
    error: str | None


def attempts_of(record: JobRecord) -> list[AttemptRow]:
    """The job's attempts, oldest first."""
    if record.attempt_history:
        return [_from_summary(summary.model_dump()) for summary in record.attempt_history]
    # A record written before attempts were kept: what its own fields say of the last one.
    return _from_record(record)


def attempt_row(summary: Mapping[str, Any]) -> AttemptRow:
    """An attempt from its summary: a record's, or a job view's (times as text)."""
    return _from_summary(summary)


def _from_summary(summary: Mapping[str, Any]) -> AttemptRow:
    return AttemptRow(
        attempt=int(summary.get("attempt") or 0),
        due_at=parse_time(summary.get("due_at")),
        fired_at=parse_time(summary.get("fired_at")),
        lateness_ms=_number(summary.get("lateness_ms")),
        finished_at=parse_time(summary.get("finished_at")),
        ok=summary.get("ok"),
        status_code=summary.get("status_code"),
        error=summary.get("error"),
    )


def _from_record(record: JobRecord) -> list[AttemptRow]:
    if record.recurrence is not None and record.attempts == 0 and record.last_run:
        run = record.last_run
        outcome = run.get("outcome") or {}
        due, fired = parse_time(run.get("due_at")), parse_time(run.get("fired_at"))
        return [
            AttemptRow(
                attempt=int(run.get("attempts") or 1),
                due_at=due if run.get("attempts") == 1 else None,
                fired_at=fired,
                lateness_ms=_late(due, fired) if run.get("attempts") == 1 else None,
                finished_at=None,
                ok=outcome.get("ok"),
                status_code=outcome.get("status_code"),
                error=outcome.get("error"),
            )
        ]
    if record.fired_at is None or record.attempts == 0:
        return []
    outcome = record.last_outcome if record.state != "firing" else None
    # Only a first attempt's due time is the record's exec_at; a retry's is not kept here.
    due = record.exec_at if record.attempts == 1 else None
    return [
        AttemptRow(
            attempt=record.attempts,
            due_at=due,
            fired_at=record.fired_at,
            lateness_ms=_late(due, record.fired_at),
            finished_at=None,
            ok=None if outcome is None else bool(outcome.get("ok")),
            status_code=None if outcome is None else outcome.get("status_code"),
            error=None if outcome is None else outcome.get("error"),
        )
    ]


def _late(due: datetime | None, fired: datetime | None) -> float | None:
    if due is None or fired is None:
        return None
    return (fired - due).total_seconds() * 1000


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return parse_exec_at(value)
        except ValueError:
            return None
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
