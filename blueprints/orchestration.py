"""The orchestrator that waits for a job's time, and the activity that runs an attempt."""

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df

from blueprints.durable_json import decode_durable_json
from scheduling.timing import format_utc, next_wait

if TYPE_CHECKING:
    from scheduling.job_record import AttemptOrder, AttemptReport, JobRun

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def schedule_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Wait until exec_at in timers of at most 3 days, then run the job's attempts.

    The input names the job and its time, never its payload: that stays sealed in the job
    store until the activity runs. An episode that cannot reach exec_at in one timer
    continues as new, so history stays small.
    """
    # The models are imported on first call, not at import: import time is cold-start time.
    from scheduling.job_record import JobRun

    run = JobRun.model_validate(decode_durable_json(context.get_input()))
    wait = next_wait(context.current_utc_datetime, run.exec_at)
    if wait is not None:
        context.set_custom_status({"phase": "waiting", "exec_at": format_utc(run.exec_at)})
        yield context.create_timer(wait.until)
        if not wait.reaches_exec_at:
            context.continue_as_new(run.model_dump(mode="json"))
            return None
    return (yield from _attempts(context, run))


def _attempts(context: df.DurableOrchestrationContext, run: "JobRun") -> Generator[Any, Any, Any]:
    """Attempt after attempt until the job store says the job has ended; its final state.

    Whether an attempt may run, and whether another follows, is decided by the activity on
    the job's record (claim and retry are compare-and-swaps there); this loop only keeps
    time. An activity that fails (the store or the vault did not answer) is run again after
    a growing wait, for as long as it takes: giving up would leave the job stuck in its
    record. Every few failures the episode continues as new, so history stays bounded.
    """
    from scheduling.job_record import AttemptOrder, AttemptReport
    from scheduling.retry import STORE_FAILURES_PER_EPISODE, store_retry_delay

    attempt, store_failures = run.attempt, run.store_failures
    # A callback of an earlier run given up while the job log was down too: it is written
    # down once an activity succeeds again.
    unlogged = run.unlogged_callback
    while True:
        context.set_custom_status({"phase": "firing", "attempt": attempt})
        order = AttemptOrder(
            transaction_id=run.transaction_id,
            generation=run.generation,
            due_at=run.exec_at,
            attempt=attempt,
        )
        try:
            report = AttemptReport.model_validate((yield from _attempt(context, run, order)))
        except Exception:
            # Its text stays in the host's logs. The attempt was not recorded: run it again.
            store_failures += 1
            if store_failures % STORE_FAILURES_PER_EPISODE == 0:
                again = run.model_copy(
                    update={
                        "attempt": attempt,
                        "store_failures": store_failures,
                        "unlogged_callback": unlogged,
                    }
                )
                context.continue_as_new(again.model_dump(mode="json"))
                return None
            delay = store_retry_delay(store_failures)
            context.set_custom_status(
                {"phase": "waiting for the store", "attempt": attempt, "failures": store_failures}
            )
            yield context.create_timer(context.current_utc_datetime + delay)
            continue
        store_failures = 0
        if unlogged is not None and (yield from _noted(context, unlogged)):
            unlogged = None
        if report.state == "firing":
            # The record holds a claim of another attempt number (an episode that continued
            # as new mid-attempt): resume that one.
            attempt = max(report.attempt, 1)
            continue
        if report.state == "retrying" and report.next_attempt_at is not None:
            context.set_custom_status(
                {
                    "phase": "retrying",
                    "attempt": report.attempt,
                    "next_attempt_at": format_utc(report.next_attempt_at),
                }
            )
            yield context.create_timer(report.next_attempt_at)
            attempt = report.attempt + 1
            continue
        abandoned = False
        if report.callback is not None:
            abandoned, not_logged = yield from _callback(context, run, report)
            unlogged = not_logged or unlogged
        if report.state == "pending" and report.next_run_at is not None:
            # A recurring job's next run: a fresh episode each run keeps history bounded.
            following = run.model_copy(
                update={
                    "exec_at": report.next_run_at,
                    "attempt": 1,
                    "store_failures": 0,
                    "unlogged_callback": unlogged,
                }
            )
            context.continue_as_new(following.model_dump(mode="json"))
            return None
        if not abandoned:  # else the status says the callback was given up
            context.set_custom_status({"phase": "done", "state": report.state})
        return {
            "transaction_id": run.transaction_id,
            "state": report.state,
            "attempts": report.attempt,
        }


def _attempt(
    context: df.DurableOrchestrationContext, run: "JobRun", order: "AttemptOrder"
) -> Generator[Any, Any, Any]:
    """The activity's report on one attempt, run holding a slot of the job's flow key (if it
    has one): acquired before, released after, also when the activity failed; acquired
    again when the activity found it had waited too long to start within the slot."""
    from blueprints.flow_control import free_slot, hold_slot
    from scheduling.job_record import SLOT_LAPSED

    if run.flow is None:
        # Defaults left out: a job without flow control has no slot to speak of.
        order_json = order.model_dump(mode="json", exclude_defaults=True)
        return (yield context.call_activity("execute_prompt", order_json))
    while True:
        slot = yield from hold_slot(context, run.flow, order.attempt)
        context.set_custom_status({"phase": "firing", "attempt": order.attempt})
        held = order.model_copy(
            update={
                "slot_ends_at": slot.lease_ends_at,
                "flow_unanswered": slot.lease_ends_at is None,
            }
        )
        try:
            report = yield context.call_activity("execute_prompt", held.model_dump(mode="json"))
        except Exception:
            yield from free_slot(context, run.flow, slot.holder)
            raise
        yield from free_slot(context, run.flow, slot.holder)
        if decode_durable_json(report).get("state") != SLOT_LAPSED:
            return report


# Activity failures (the store or the vault did not answer) a callback rides out before it is
# given up: with store_retry_delay's waits, an outage of about an hour. Its own delivery
# failures are retried under the job's retry policy.
CALLBACK_STORE_FAILURES = 9


def _callback(
    context: df.DurableOrchestrationContext, run: "JobRun", report: "AttemptReport"
) -> Generator[Any, Any, tuple[bool, dict[str, Any] | None]]:
    """Deliver the run's outcome callback, with retries; whatever happens, the job's own
    outcome is already recorded and stays as it is.

    A recurring job's next run waits for no callback: every wait ends by it, and the
    callback is given up once it has come. Given up while the store was not answering, it
    is written down in the custom status and the job's log: (given up, its order when the
    job log did not take the entry either).
    """
    from delivery.callbacks import CallbackOrder, CallbackReport
    from scheduling.retry import store_retry_delay

    assert report.callback is not None
    which, next_run_at = report.callback, report.next_run_at
    attempt, failures = 1, 0
    while True:
        context.set_custom_status({"phase": "calling back", "callback": which, "attempt": attempt})
        order = CallbackOrder(
            transaction_id=run.transaction_id,
            generation=run.generation,
            due_at=run.exec_at,
            callback=which,
            attempt=attempt,
            run=report.ended_run,
        )
        try:
            delivery = CallbackReport.model_validate(
                (yield context.call_activity("deliver_callback", order.model_dump(mode="json")))
            )
        except Exception:
            failures += 1
            wake = context.current_utc_datetime + store_retry_delay(failures)
            if failures >= CALLBACK_STORE_FAILURES or (
                next_run_at is not None and wake >= next_run_at
            ):
                context.set_custom_status(
                    {
                        "phase": "callback abandoned",
                        "callback": which,
                        "attempt": attempt,
                        "failures": failures,
                    }
                )
                unlogged = order.model_dump(mode="json")
                return True, (None if (yield from _noted(context, unlogged)) else unlogged)
            yield context.create_timer(wake)
            continue
        failures = 0
        if delivery.next_attempt_at is None:
            return False, None
        if next_run_at is not None and delivery.next_attempt_at >= next_run_at:
            return False, None  # the activity caps its retries at the next run; its twin
        yield context.create_timer(delivery.next_attempt_at)
        attempt += 1


def _noted(
    context: df.DurableOrchestrationContext, order: dict[str, Any]
) -> Generator[Any, Any, bool]:
    """Whether the job log took the entry saying that the callback of `order` was given up."""
    try:
        yield context.call_activity("note_callback_abandoned", order)
    except Exception:
        return False  # the host's log has why; a later episode tries again
    return True


@bp.activity_trigger(input_name="order")
def deliver_callback(order: dict[str, Any]) -> dict[str, Any]:
    """One delivery attempt of an outcome callback; whether it was delivered, or when to try
    again. Never the URL or the summary."""
    from blueprints import dependencies
    from delivery.callbacks import CallbackOrder
    from delivery.callbacks import deliver_callback as deliver

    this = CallbackOrder.model_validate(decode_durable_json(order))
    deps = dependencies.current()
    settings = deps.settings()
    report = deliver(
        this,
        deps.job_store(settings),
        deps.sealer(settings),
        deps.clock,
        context_for=lambda record: dependencies.firing_context(
            record.transaction_id, this.due_at, this.attempt, record.generation
        ),
    )
    return report.model_dump(mode="json")


@bp.activity_trigger(input_name="order")
def note_callback_abandoned(order: dict[str, Any]) -> None:
    """Write in the job's log that its callback was given up while the store did not answer."""
    from blueprints import dependencies
    from delivery.callbacks import CallbackOrder, log_abandoned

    this = CallbackOrder.model_validate(decode_durable_json(order))
    context = dependencies.firing_context(this.transaction_id, this.due_at, this.attempt)
    if not log_abandoned(this, context):
        raise RuntimeError("the job log did not store the entry")  # a later episode retries


@bp.activity_trigger(input_name="order")
def execute_prompt(order: dict[str, Any]) -> dict[str, Any]:
    """Run one attempt if the job's record still allows it; the report, never the payload."""
    # Here, not at import: the stores, the HTTP client and the sealer are cold-start weight.
    from blueprints import dependencies
    from blueprints.telemetry import configure_once
    from delivery.attempts import run_attempt
    from scheduling.flow_control import may_start
    from scheduling.job_record import SLOT_LAPSED, AttemptOrder, AttemptReport

    configure_once()
    this = AttemptOrder.model_validate(decode_durable_json(order))
    deps = dependencies.current()
    settings = deps.settings()
    if this.slot_ends_at is not None and not may_start(this.slot_ends_at, deps.clock(), settings):
        return AttemptReport(state=SLOT_LAPSED, attempt=this.attempt).model_dump(mode="json")
    report = run_attempt(
        this,
        deps.job_store(settings),
        deps.sealer(settings),
        deps.clock,
        context_for=lambda record: dependencies.firing_context(
            record.transaction_id, record.exec_at, this.attempt, record.generation
        ),
    )
    return report.model_dump(mode="json")
