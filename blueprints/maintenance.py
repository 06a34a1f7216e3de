"""Timer-triggered upkeep: failed jobs past FAILED_RETENTION_DAYS are removed, and stalled
jobs (live, long overdue, with no orchestration) are started again.

The failed list and its clear remove old failed jobs too, but only where they read; the
sweep makes the retention hold for a list nobody reads.
"""

import logging

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()
log = logging.getLogger(__name__)


# Hourly, at a minute that is nobody's round number; each pass does bounded work.
@bp.timer_trigger(arg_name="timer", schedule="0 17 * * * *")
@bp.durable_client_input(client_name="client")
async def sweep_failed_jobs(
    timer: func.TimerRequest, client: df.DurableOrchestrationClient
) -> None:
    from blueprints import dead_letters

    result = await dead_letters.sweep_failed(client)
    log.info(
        "retention sweep: %d failed jobs removed (complete: %s)", result.removed, result.complete
    )


# Every 5 minutes, at 41 s past; a pass reads only overdue rows of the due index.
@bp.timer_trigger(arg_name="timer", schedule="41 */5 * * * *")
@bp.durable_client_input(client_name="client")
async def repair_stalled_jobs(
    timer: func.TimerRequest, client: df.DurableOrchestrationClient
) -> None:
    from blueprints import stalled_jobs

    result = await stalled_jobs.repair_stalled(client)
    if result.restarted:
        log.warning(
            "stalled jobs: %d restarted of %d overdue rows", result.restarted, result.examined
        )
