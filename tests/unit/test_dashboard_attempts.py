"""The attempts a job's page shows: its attempt history, or, for a record written before
attempts were kept, what the record's own fields say of its last attempt."""

from datetime import timedelta
from typing import Any

from dashboard.attempts import attempt_row, attempts_of
from scheduling.attempt_history import AttemptSummary
from scheduling.job_record import JobRecord
from tests.support.job_records import DUE, job_record


def record(**changes: Any) -> JobRecord:
    return job_record(**{"state": "succeeded", "updated_at": DUE, **changes})


def test_each_attempt_of_the_history_with_its_lateness() -> None:
    history = [
        AttemptSummary(
            attempt=1,
            due_at=DUE,
            fired_at=DUE + timedelta(milliseconds=250),
            lateness_ms=250,
            finished_at=DUE + timedelta(seconds=1),
            ok=False,
            status_code=503,
            error="503",
        ),
        AttemptSummary(
            attempt=2,
            due_at=DUE + timedelta(seconds=30),
            fired_at=DUE + timedelta(seconds=31),
            lateness_ms=1000,
            ok=True,
            status_code=200,
        ),
    ]
    rows = attempts_of(record(attempt_history=history, attempts=2))
    assert [(r.attempt, r.lateness_ms, r.ok, r.status_code) for r in rows] == [
        (1, 250, False, 503),
        (2, 1000, True, 200),
    ]


def test_a_record_without_history_shows_its_last_attempt() -> None:
    fired = DUE + timedelta(seconds=2)
    rows = attempts_of(
        record(attempt_history=[], attempts=1, fired_at=fired, last_outcome={"ok": True})
    )
    assert len(rows) == 1
    assert rows[0].lateness_ms == 2000
    assert rows[0].ok is True


def test_a_job_view_summary_reads_its_times_from_text() -> None:
    row = attempt_row(
        {
            "attempt": 1,
            "due_at": "2026-12-01T09:00:00Z",
            "fired_at": "2026-12-01T09:00:01Z",
            "lateness_ms": 1000,
            "ok": False,
            "error": "refused",
        }
    )
    assert row.fired_at == DUE + timedelta(seconds=1)
    assert row.error == "refused"
