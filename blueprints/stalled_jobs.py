"""Stalled jobs: live records whose time is long past and whose orchestration is gone.

It should not happen, but a create whose start failed and whose take-back failed too (a 503
"may have been scheduled" to a caller without an Idempotency-Key), or an orchestration
purged or terminated by hand, leaves a record that says pending with nothing to wait for
it. A timer pass looks at the oldest rows of the due index (every live job has one, in due
order), and starts the orchestration of any live job due longer ago than STALL_AGE that
has none running. Starting is safe to repeat: the extension refuses a second start of a
running instance, and the activity's claim decides what an attempt may do.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import azure.durable_functions as df

from blueprints import dependencies
from blueprints.instances import ORCHESTRATOR, orchestration_runs
from blueprints.unreadable import read_job
from scheduling.job_record import JobRecord, JobRun
from storage.index_upkeep import row_verdict
from storage.job_rows import UnreadableRow
from storage.job_store import DueRange

# Far longer than any lateness of a healthy host (its timers poll every 10-30 s).
STALL_AGE = timedelta(minutes=10)
# One pass looks at most at this many overdue rows (a healthy store has none).
MAX_ROWS_PER_PASS = 500
PAGE_SIZE = 100
REPAIRABLE_STATES = frozenset({"pending", "retrying", "firing"})
log = logging.getLogger(__name__)


@dataclass
class Repair:
    examined: int = 0
    restarted: int = 0


async def repair_stalled(client: df.DurableOrchestrationClient) -> Repair:
    """Start the orchestration of every live job overdue by STALL_AGE that has none."""
    deps = dependencies.current()
    store = deps.job_store(deps.settings())
    now = deps.clock()
    scope = DueRange(due_to=now - STALL_AGE)
    result = Repair()
    token = None
    while result.examined < MAX_ROWS_PER_PASS:
        entries, token = await asyncio.to_thread(store.due_page, scope, PAGE_SIZE, token)
        for entry in entries:
            result.examined += 1
            found = await asyncio.to_thread(read_job, store, entry.transaction_id)
            if isinstance(found, UnreadableRow):
                continue  # nothing can run it: it is listed as unreadable, for a DELETE
            record = found.record if found else None
            if record is None or row_verdict(entry, record, now) != "list":
                continue  # the listing's readers drop rows of ended jobs
            if record.state in REPAIRABLE_STATES and await _restart(client, record):
                result.restarted += 1
        if token is None:
            break
    return result


async def _restart(client: df.DurableOrchestrationClient, record: JobRecord) -> bool:
    if await orchestration_runs(client, record):
        return False
    # A claimed attempt whose orchestration is gone resumes that attempt; the claim lets
    # only it run ("resumed"), and a retrying job waits for its next attempt as before.
    attempt = max(record.attempts, 1) if record.state == "firing" else 1
    run = JobRun(
        transaction_id=record.transaction_id,
        generation=record.generation,
        exec_at=record.exec_at,
        attempt=attempt,
        flow=record.flow,
    )
    try:
        await client.start_new(ORCHESTRATOR, record.instance_id, run.model_dump(mode="json"))
    except Exception:
        log.warning("could not restart the stalled job %s", record.transaction_id, exc_info=True)
        return False
    log.warning("restarted the orchestration of stalled job %s", record.transaction_id)
    return True
