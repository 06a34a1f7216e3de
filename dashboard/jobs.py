"""What the dashboard's tables say of a live job beyond its record: whether it is overdue.

A pending or retrying job is due at its run's time (or its retry's); a healthy host fires it
within seconds of that. One still waiting OVERDUE_AFTER past it is flagged: its host may be
down or behind, or (a flow-controlled job) it may be queued for its flow key's slot.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduling.job_record import JobRecord

# Well past a healthy host's lateness: its timers arrive by polling, at most
# maxQueuePollingInterval late (10 s in host.json; 30 s is the extension's default), and the
# attempt's activity may then wait in its queue behind others. Far short of the stalled-job
# repair (blueprints/stalled_jobs.py: STALL_AGE, 10 minutes), which restarts such a job.
OVERDUE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Overdue:
    """A job still waiting past its time: by how long, and whether a flow key may hold it."""

    by: timedelta
    flow_key: str | None


def due_at(record: JobRecord) -> datetime | None:
    """When the job's next attempt is due: its retry's time while retrying, else its run's;
    None when no attempt is waiting (firing, paused, ended)."""
    if record.state == "retrying":
        return record.next_attempt_at or record.exec_at
    if record.state == "pending":
        return record.exec_at
    return None


def overdue(record: JobRecord, now: datetime) -> Overdue | None:
    """The job's lateness if it waits more than OVERDUE_AFTER past its due time, else None."""
    due = due_at(record)
    if due is None or now - due <= OVERDUE_AFTER:
        return None
    return Overdue(by=now - due, flow_key=record.flow.key if record.flow else None)


def format_duration(span: timedelta) -> str:
    """A duration in its two largest units, rounded down: `45 s`, `3 min 20 s`, `2 h 5 min`,
    `3 d 4 h`."""
    seconds = max(int(span.total_seconds()), 0)
    units = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
    # From the largest unit with a count, that unit and the next (left out when zero).
    counts: list[tuple[int, str]] = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count or counts:
            counts.append((count, name))
    shown = [f"{count} {name}" for count, name in counts[:2] if count]
    return " ".join(shown) or "0 s"
