"""A job's lifecycle entries, made from its record: the same entry whether written or derived.

The routes write these entries as things happen, but a job log outage must not lose them.
So each is a pure function of the job's record (deterministic id, message and fields), and
a read of the log adds those of them the store does not hold: an `accepted` or `cancelled`
entry is never missing, whatever the log store did at the time.
"""

from collections.abc import Iterable
from datetime import datetime

from scheduling.job_record import JobRecord
from scheduling.timing import format_utc
from storage.job_log.entries import JobLogEntry, LogKind, event_entry_id


def lifecycle_entry(
    transaction_id: str, kind: LogKind, at: datetime, message: str, **fields: object
) -> JobLogEntry:
    return JobLogEntry(
        transaction_id=transaction_id,
        entry_id=event_entry_id(kind, at),
        timestamp=at,
        kind=kind,
        message=message,
        fields=fields,
    )


def accepted_entry(record: JobRecord) -> JobLogEntry:
    return lifecycle_entry(
        record.transaction_id,
        "accepted",
        record.accepted_at,
        f"{record.prompt_type} accepted for {format_utc(record.exec_at)}",
        prompt_type=record.prompt_type,
        exec_at=format_utc(record.exec_at),
    )


def cancelled_entry(record: JobRecord) -> JobLogEntry | None:
    """The entry of what cancelled the job (its record's last write): a delete, a wipe, or
    a resume that found no run left in the schedule of a job that never ran."""
    if record.state != "cancelled":
        return None
    if record.cancelled_by == "wipe":
        return lifecycle_entry(
            record.transaction_id, "wiped", record.updated_at, "cancelled by a wipe of all jobs"
        )
    if record.cancelled_by == "filter":
        return lifecycle_entry(
            record.transaction_id,
            "cancelled",
            record.updated_at,
            "cancelled with others by a filtered delete (DELETE /api/schedule?…)",
        )
    if record.cancelled_by == "ended":
        return lifecycle_entry(
            record.transaction_id,
            "cancelled",
            record.updated_at,
            "resumed with no run left in its schedule, before any run: cancelled",
        )
    return lifecycle_entry(
        record.transaction_id, "cancelled", record.updated_at, "deleted through the API"
    )


def replayed_entry(record: JobRecord) -> JobLogEntry | None:
    """The entry of the job's latest replay (a new run of a failed job, due at once)."""
    if record.replayed_at is None:
        return None
    return lifecycle_entry(
        record.transaction_id,
        "replayed",
        record.replayed_at,
        f"replayed: runs again at {format_utc(record.replayed_at)}",
    )


def derived_entries(record: JobRecord) -> list[JobLogEntry]:
    entries = (accepted_entry(record), replayed_entry(record), cancelled_entry(record))
    return [entry for entry in entries if entry]


def with_derived(
    stored: list[JobLogEntry],
    derived: Iterable[JobLogEntry],
    after: str | None,
    more_stored: bool,
    limit: int,
) -> tuple[list[JobLogEntry], bool]:
    """One page of the log: the stored page with the derived entries it lacks, in id order.

    `stored` is the store's page of entries after `after`; `more_stored` says the store has
    more past it. A derived entry belongs here when it sorts after `after` and, unless this
    is the store's last page, before the page's last entry (later ones come with later
    pages). Returns the page (at most `limit`) and whether more entries follow it.
    """
    held = {entry.entry_id for entry in stored}
    last = stored[-1].entry_id if stored else None
    missing = [
        entry
        for entry in derived
        if entry.entry_id not in held
        and (after is None or entry.entry_id > after)
        and (not more_stored or (last is not None and entry.entry_id < last))
    ]
    merged = sorted([*stored, *missing], key=lambda entry: entry.entry_id)
    return merged[:limit], more_stored or len(merged) > limit
