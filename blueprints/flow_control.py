"""Flow control per destination: the entity that keeps a flow key's slots, and the steps an
orchestration takes to hold one around an attempt.

The protocol (every decision is in scheduling/flow_control.py):

1. The orchestration *calls* `flow_control@{key}` with `acquire` for a holder id new for
   this acquisition (instance id and a ticket from `context.new_uuid()`, so replays ask
   with the same id). The answer is `granted` (start at `start_at`), `queued` or `full`.
2. A queued orchestration waits for the external event `flow-slot-{ticket}`, racing a
   timer at `recheck_at`; a full one waits for the timer. When the timer wins it asks
   again: asking is idempotent, so a grant whose word got lost is found that way.
3. After the attempt's activity (also when it failed) the orchestration calls `release`.
   The entity answers with the waiters it granted the freed slots to, and the releasing
   orchestration tells them through the activity `grant_flow_slots`, which raises their
   events with the durable client. A waiter whose instance is gone (terminated, purged)
   is released in turn.
4. Every call races a timer (ENTITY_CALL_DEADLINE): an entity whose batches keep failing
   is never answered on the real host, and a job must not wait for it forever.
5. The activity gets the slot's lease end and does not start an attempt that could outlive
   it (it waited in the host's queue that long): the orchestration releases and asks again.

Why this shape: a Python entity can neither signal an orchestration nor answer a call
later (DurableEntityContext has no signal_entity and Entity.handle sets every operation's
result in the batch that processed it, azure-functions-durable 1.7
`azure/durable_functions/entity.py`), and an orchestrator has no action that raises an
event on another instance (`models/actions/ActionType.py`). So the word that a slot is
free goes from the entity, through its caller's answer, to an activity with a client.
"""

from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df

from blueprints.durable_json import decode_durable_json

if TYPE_CHECKING:
    from scheduling.flow_control import AcquireAnswer, FlowLimits, Grant

bp = df.Blueprint()
ENTITY_NAME = "flow_control"
SLOT_EVENT_PREFIX = "flow-slot-"
# What a waiting orchestration's custom status says (the status route shows it: job_views).
WAITING_FOR_A_SLOT = "waiting for a slot"
# How long an orchestration waits for its key's entity to answer a call. A healthy entity
# answers a full line (FLOW_QUEUE_LIMIT) well within it; past it, an acquire goes on without
# a slot and a release goes on without the waiters' names.
ENTITY_CALL_DEADLINE = timedelta(minutes=5)


@bp.entity_trigger(context_name="context", entity_name=ENTITY_NAME)
def flow_control(context: df.DurableEntityContext) -> None:
    """One flow key's holders, queue and token bucket; operations `acquire` and `release`."""
    from blueprints import dependencies
    from scheduling import flow_control as flow
    from scheduling.timing import parse_exec_at

    settings = dependencies.current().settings()
    lease = timedelta(seconds=settings.flow_slot_lease_seconds)
    request = decode_durable_json(context.get_input())
    state = flow.FlowState.model_validate(context.get_state(dict) or {})
    now = parse_exec_at(request["now"])
    if context.operation_name == "acquire":
        limits = flow.FlowLimits.model_validate(request["limits"])
        state, answer = flow.acquire(
            state, str(request["holder"]), limits, now, lease, settings.flow_queue_limit
        )
        recheck_at = now + timedelta(seconds=settings.flow_recheck_seconds)
        result = answer.model_copy(update={"recheck_at": recheck_at}).model_dump(mode="json")
    elif context.operation_name == "release":
        state, grants = flow.release(state, [str(h) for h in request["holders"]], now, lease)
        result = {"notify": [grant.model_dump(mode="json") for grant in grants]}
    else:
        raise ValueError(f"{ENTITY_NAME} has no operation {context.operation_name!r}")
    context.set_result(result)
    if flow.is_idle(state):
        context.destruct_on_exit()  # as good as new: flow keys come and go with destinations
    else:
        context.set_state(state.model_dump(mode="json"))


@bp.activity_trigger(input_name="grants")
@bp.durable_client_input(client_name="client")
async def grant_flow_slots(grants: Any, client: df.DurableOrchestrationClient) -> list[str]:
    """Tell each granted waiter that its slot is free; the holders whose instance is gone."""
    from scheduling.flow_control import Grant, instance_of

    gone: list[str] = []
    for item in decode_durable_json(grants):
        grant = Grant.model_validate(item)
        try:
            await client.raise_event(
                instance_of(grant.holder),
                slot_event(grant.holder),
                grant.model_dump(mode="json"),
            )
        except Exception as error:
            # The SDK raises a bare Exception; 404 and 410 are told apart by its message.
            text = str(error)
            if "is gone" in text or text.startswith("No instance with ID"):
                gone.append(grant.holder)
            else:
                raise
    return gone


def slot_event(holder: str) -> str:
    """The event that tells this holder (and no earlier acquisition) its slot is free."""
    return SLOT_EVENT_PREFIX + holder.rsplit("|", 1)[-1]


@dataclass(frozen=True)
class Slot:
    """What an orchestration holds around an attempt: its holder id (released afterwards in
    any case), and when the key reclaims the slot; None when the key's entity did not answer
    within ENTITY_CALL_DEADLINE and the attempt goes without a slot."""

    holder: str
    lease_ends_at: datetime | None


def hold_slot(
    context: df.DurableOrchestrationContext, flow: "FlowLimits", attempt: int
) -> Generator[Any, Any, Slot]:
    """Wait until the flow key grants this orchestration a slot (and its rate allows the
    start), or until its entity has left a call unanswered for ENTITY_CALL_DEADLINE."""
    from scheduling.flow_control import AcquireAnswer, Grant, holder_id
    from scheduling.timing import format_utc

    holder = holder_id(context.instance_id, str(context.new_uuid()))
    answer = yield from _acquire(context, flow, holder)
    while answer is not None and answer.outcome != "granted":
        context.set_custom_status(
            {
                "phase": WAITING_FOR_A_SLOT,
                "flow_key": flow.key,
                "attempt": attempt,
                "position": answer.position,
            }
        )
        recheck = context.create_timer(
            answer.recheck_at or context.current_utc_datetime + timedelta(minutes=5)
        )
        if answer.outcome == "queued":
            told = context.wait_for_external_event(slot_event(holder))
            winner = yield context.task_any([told, recheck])
            if winner is told:
                recheck.cancel()
                grant = Grant.model_validate(decode_durable_json(told.result))
                answer = AcquireAnswer(
                    outcome="granted", start_at=grant.start_at, lease_ends_at=grant.lease_ends_at
                )
                break
        else:
            yield recheck
        answer = yield from _acquire(context, flow, holder)
    if answer is None:
        return Slot(holder, None)
    if answer.start_at is not None and answer.start_at > context.current_utc_datetime:
        context.set_custom_status(
            {
                "phase": WAITING_FOR_A_SLOT,
                "flow_key": flow.key,
                "attempt": attempt,
                "start_at": format_utc(answer.start_at),
            }
        )
        yield context.create_timer(answer.start_at)
    return Slot(holder, answer.lease_ends_at)


def free_slot(
    context: df.DurableOrchestrationContext, flow: "FlowLimits", holder: str
) -> Generator[Any, Any, None]:
    """Give the slot back and tell the waiters it went to (unless the entity does not
    answer: its lease frees the slot then, and each waiter finds its grant by asking again)."""
    notify = yield from _release(context, flow, [holder])
    yield from _tell(context, flow, notify)


def _acquire(
    context: df.DurableOrchestrationContext, flow: "FlowLimits", holder: str
) -> Generator[Any, Any, "AcquireAnswer | None"]:
    from scheduling.flow_control import AcquireAnswer
    from scheduling.timing import format_utc

    request = {
        "holder": holder,
        "limits": flow.model_dump(mode="json"),
        "now": format_utc(context.current_utc_datetime),
    }
    raw = yield from _call(context, flow, "acquire", request)
    if raw is None:
        return None
    answer = AcquireAnswer.model_validate(decode_durable_json(raw))
    yield from _tell(context, flow, answer.notify)
    return answer


def _release(
    context: df.DurableOrchestrationContext, flow: "FlowLimits", holders: list[str]
) -> Generator[Any, Any, list["Grant"]]:
    from scheduling.flow_control import Grant
    from scheduling.timing import format_utc

    request = {"holders": holders, "now": format_utc(context.current_utc_datetime)}
    raw = yield from _call(context, flow, "release", request)
    if raw is None:
        return []
    return [Grant.model_validate(item) for item in decode_durable_json(raw)["notify"]]


def _call(
    context: df.DurableOrchestrationContext,
    flow: "FlowLimits",
    operation: str,
    request: dict[str, Any],
) -> Generator[Any, Any, Any]:
    """The entity's answer to `operation`, or None when none came within the deadline.

    On the real host an entity batch whose invocation fails is retried and its callers are
    never answered (docs/flow-control.md); an orchestration must not wait for that forever.
    """
    call = context.call_entity(_entity(flow), operation, request)
    deadline = context.create_timer(context.current_utc_datetime + ENTITY_CALL_DEADLINE)
    winner = yield context.task_any([call, deadline])
    if winner is not call:
        return None
    deadline.cancel()
    if isinstance(call.result, Exception):
        raise call.result  # the operation failed: the attempt is tried again later
    return call.result


def _tell(
    context: df.DurableOrchestrationContext, flow: "FlowLimits", grants: list["Grant"]
) -> Generator[Any, Any, None]:
    """Tell granted waiters; release those whose orchestration is gone, and tell whoever
    their slots went to (each round frees at least one gone holder, so this ends)."""
    while grants:
        try:
            gone = yield context.call_activity(
                "grant_flow_slots", [grant.model_dump(mode="json") for grant in grants]
            )
        except Exception:
            # Not told: each waiter finds its grant when it asks again (FLOW_RECHECK_SECONDS).
            return
        gone = [str(holder) for holder in decode_durable_json(gone) or []]
        if not gone:
            return
        grants = yield from _release(context, flow, gone)


def _entity(flow: "FlowLimits") -> df.EntityId:
    return df.EntityId(ENTITY_NAME, flow.key)
