"""The orchestrator that waits for a job's time, and the activity that fires it."""

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from blueprints import dependencies
from scheduling.durable_json import decode_durable_json
from scheduling.firing import cancelled_result, failed_result, fire_job
from scheduling.models import Attempt, Job
from scheduling.registry import REGISTRY_ENTITY
from scheduling.retry import next_attempt_delay
from scheduling.timing import format_utc, next_wait

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def schedule_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Wait until exec_at in timers of at most 3 days, then fire the job.

    An episode that cannot reach exec_at in one timer continues as new, so history stays small.
    """
    job = Job.model_validate(decode_durable_json(context.get_input()))
    wait = next_wait(context.current_utc_datetime, job.exec_at)
    if wait is not None:
        context.set_custom_status({"phase": "waiting", "exec_at": format_utc(job.exec_at)})
        yield context.create_timer(wait.until)
        if not wait.reaches_exec_at:
            context.continue_as_new(job.model_dump(mode="json"))
            return None
    return (yield from _fire(context, job))


def _fire(context: df.DurableOrchestrationContext, job: Job) -> Generator[Any, Any, Any]:
    """Claim and run attempts until one is final, per the job's retry policy; its result.

    Every attempt first claims the job in its registry shard: a job that was deleted or
    wiped meanwhile is not claimable and ends as cancelled instead of firing.
    """
    registry = df.EntityId(REGISTRY_ENTITY, job.registry_shard)
    job_ref = {"transaction_id": job.transaction_id}
    attempt = 1
    while True:
        try:
            claimed = yield context.call_entity(registry, "claim", job_ref)
        except Exception:
            # Without a claim the job must not fire; it still ends with a visible outcome.
            # (Failure texts are left to the host's logs: they can quote the job's payload.)
            context.signal_entity(registry, "remove", job_ref)
            context.set_custom_status({"phase": "done", "ok": False, "attempts": attempt - 1})
            return failed_result(job, "the registry could not claim the job").model_dump(
                mode="json"
            )
        if not claimed:
            context.set_custom_status({"phase": "cancelled", "attempts": attempt - 1})
            return cancelled_result(job, attempt - 1).model_dump(mode="json")

        context.set_custom_status({"phase": "firing", "attempt": attempt})
        try:
            result = yield context.call_activity(
                "execute_prompt", Attempt(job=job, number=attempt).model_dump(mode="json")
            )
        except Exception:
            # The activity itself broke (not the target: that is an outcome).
            result = failed_result(job, "execute_prompt failed; see the app's logs").model_dump(
                mode="json"
            )
        delay = next_attempt_delay(
            job.retry, job.transaction_id, attempt, result.get("outcome", {})
        )
        if delay is None:
            context.signal_entity(registry, "remove", job_ref)
            done = {"phase": "done", "ok": bool(result.get("ok")), "attempts": attempt}
            context.set_custom_status(done)
            return result
        # Pending again while it waits, so a delete can cancel it before the next claim.
        context.signal_entity(registry, "release", job_ref)
        retry_at = context.current_utc_datetime + delay
        context.set_custom_status(
            {"phase": "retrying", "attempt": attempt, "next_attempt_at": format_utc(retry_at)}
        )
        yield context.create_timer(retry_at)
        attempt += 1


@bp.activity_trigger(input_name="attempt")
def execute_prompt(attempt: dict[str, Any]) -> dict[str, Any]:
    """Run one attempt of the job's prompt; target failures come back as outcomes, never raised."""
    this = Attempt.model_validate(decode_durable_json(attempt))
    context = dependencies.firing_context(this.job, this.number)
    return fire_job(this.job, context).model_dump(mode="json")
