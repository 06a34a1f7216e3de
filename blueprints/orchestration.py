"""The orchestrator that waits for a job's time, and the activity that fires it."""

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from blueprints import dependencies
from scheduling.durable_json import decode_durable_json
from scheduling.firing import cancelled_after, cancelled_result, failed_result, fire_job
from scheduling.models import Attempt, Job, JobResult
from scheduling.registry import CLAIM_RETRY_SECONDS, MAX_CLAIM_TRIES, REGISTRY_ENTITY, JobRef
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

    Every attempt first claims the job in its registry shard: a job deleted or wiped
    meanwhile is not claimable and ends as cancelled instead of firing.
    """
    registry = df.EntityId(REGISTRY_ENTITY, job.registry_shard)
    ref = JobRef(
        transaction_id=job.transaction_id,
        accepted_at=format_utc(job.accepted_at),
        exec_at=format_utc(job.exec_at),
    ).model_dump()
    attempt, last = 1, None
    while True:
        claimed = yield from _claim(context, registry, ref)
        if claimed != "claimed":
            return _ended_unclaimed(context, registry, ref, job, claimed, last)

        context.set_custom_status({"phase": "firing", "attempt": attempt})
        try:
            output = yield context.call_activity(
                "execute_prompt", Attempt(job=job, number=attempt).model_dump(mode="json")
            )
            result = JobResult.model_validate(output)
        except Exception:
            # The activity itself broke (not the target: that is an outcome). Its text is
            # left to the host's logs: it can quote the job's payload.
            result = failed_result(job, "execute_prompt failed; see the app's logs", attempt)
        delay = next_attempt_delay(job.retry, job.transaction_id, attempt, result.outcome)
        released = "released"
        if delay is not None:
            try:
                released = yield context.call_entity(registry, "release", ref)
            except Exception:
                released = "absent"  # no further attempt without the shard's say-so
        if delay is None or released != "released":
            context.signal_entity(registry, "remove", ref)
            cancelled = released == "cancelled"  # a delete met this attempt: it was the last
            context.set_custom_status(
                {
                    "phase": "cancelled" if cancelled else "done",
                    "ok": result.ok,
                    "attempts": attempt,
                }
            )
            return (cancelled_after(result) if cancelled else result).model_dump(mode="json")
        retry_at = context.current_utc_datetime + delay
        context.set_custom_status(
            {"phase": "retrying", "attempt": attempt, "next_attempt_at": format_utc(retry_at)}
        )
        yield context.create_timer(retry_at)
        attempt, last = attempt + 1, result


def _ended_unclaimed(
    context: df.DurableOrchestrationContext,
    registry: df.EntityId,
    ref: dict[str, Any],
    job: Job,
    answer: str,
    last: JobResult | None,
) -> Any:
    """The result of a job whose next attempt could not be claimed."""
    attempts = last.attempts if last is not None else 0
    if answer == "cancelled":
        context.signal_entity(registry, "remove", ref)
        context.set_custom_status({"phase": "cancelled", "attempts": attempts})
        ended = cancelled_result(job) if last is None else cancelled_after(last)
        return ended.model_dump(mode="json")
    # Never registered (or displaced): bury it, so a registration arriving now stays out.
    context.signal_entity(registry, "cancel", {"request_id": context.new_uuid(), "jobs": [ref]})
    context.set_custom_status({"phase": "done", "ok": False, "attempts": attempts})
    if last is not None:
        return last.model_dump(mode="json")
    return failed_result(job, "the job's registration never arrived", 0).model_dump(mode="json")


def _claim(
    context: df.DurableOrchestrationContext, registry: df.EntityId, ref: dict[str, Any]
) -> Generator[Any, Any, str]:
    """The shard's answer to a claim, waiting a while for a registration still on its way."""
    for tries in range(1, MAX_CLAIM_TRIES + 1):
        try:
            answer = yield context.call_entity(registry, "claim", ref)
        except Exception:
            answer = "unknown"  # the shard failed the operation: as good as no answer
        if answer != "unknown" or tries == MAX_CLAIM_TRIES:
            return str(answer)
        yield context.create_timer(
            context.current_utc_datetime + timedelta(seconds=CLAIM_RETRY_SECONDS)
        )
    return "unknown"


@bp.activity_trigger(input_name="attempt")
def execute_prompt(attempt: dict[str, Any]) -> dict[str, Any]:
    """Run one attempt of the job's prompt; target failures come back as outcomes, never raised."""
    this = Attempt.model_validate(decode_durable_json(attempt))
    context = dependencies.firing_context(this.job, this.number)
    return fire_job(this.job, context).model_dump(mode="json")
