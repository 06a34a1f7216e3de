"""Jobs that cannot be read, as every route meets them: one bad row is shown as such (its
id, its state if readable, why), never a failed page; each meeting is logged, naming the
job, and counted (`scheduler.jobs.unreadable`)."""

import logging
from collections.abc import Callable

from api.job_views import sealed_under_absent_key
from api.problems import ProblemError, problem
from blueprints.dependencies import Dependencies
from scheduling.job_record import JobRecord
from scheduling.metrics import job_metrics
from scheduling.settings import SchedulerSettings
from storage.job_rows import UnreadableRow
from storage.job_store import StoredJob, TableJobStore, UnreadableRecord

log = logging.getLogger(__name__)
Found = StoredJob | UnreadableRow | None


def read_job(store: TableJobStore, transaction_id: str) -> Found:
    """The job's record, or what could be read of a row that is not one (reported)."""
    try:
        return store.get(transaction_id)
    except UnreadableRecord as unreadable:
        report(unreadable.row, "record")
        return unreadable.row


def key_check(deps: Dependencies, settings: SchedulerSettings) -> Callable[[str], bool] | None:
    """Whether the app holds a key id; None when sealing is not configured (then nothing can
    be said of any record, and the setting's problem is logged and shown elsewhere)."""
    try:
        return deps.sealer(settings).holds
    except Exception:
        return None


def shown(record: JobRecord, holds: Callable[[str], bool] | None) -> JobRecord | UnreadableRow:
    """The record, or (its payload sealed under a key the app does not hold) what a reader
    is told of it instead: it would fail when it fires."""
    why = sealed_under_absent_key(record, holds) if holds is not None else None
    if why is None:
        return record
    row = UnreadableRow.of(record, why)
    report(row, "key")
    return row


def report(row: UnreadableRow, reason: str) -> None:
    log.error("job %s is unreadable: %s", row.transaction_id, row.why)
    job_metrics().unreadable.add(1, {"reason": reason})


def unreadable_conflict(row: UnreadableRow) -> ProblemError:
    return problem(
        409,
        "job-unreadable",
        "The job cannot be read",
        f"the job's record cannot be read ({row.why}), so it cannot be changed; "
        f"DELETE /api/schedule/{row.transaction_id} ends it",
    )
