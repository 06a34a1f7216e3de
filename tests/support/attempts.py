"""Run one attempt of a job in this process, exactly as the Python worker runs it.

The app's `execute_prompt` activity is called as the worker calls it (its input decoded from
JSON, its result encoded), with whatever `blueprints.dependencies` are current: it builds the
store, the sealer and the firing context and calls `delivery.attempts.run_attempt`. So the
call of `run_attempt` stays in one place, the app's, whatever arguments it gains or loses.
"""

import functools
import json

from function_app import app
from local_durable_host.worker_calls import DurableFunction, call_activity, discover
from scheduling.job_record import AttemptOrder, AttemptReport
from storage.job_store import TableJobStore

ATTEMPT_ACTIVITY = "execute_prompt"


@functools.cache
def _attempt_activity() -> DurableFunction:
    return discover(app).activities[ATTEMPT_ACTIVITY]


def run_one_attempt(order: AttemptOrder) -> AttemptReport:
    """Attempt `order.attempt` of the job, as its orchestration's activity call runs it; its
    report. RuntimeError with the worker's message if the activity failed."""
    outcome = call_activity(
        _attempt_activity(), json.dumps(order.model_dump(mode="json")), client_binding=""
    )
    if outcome.result_json is None:
        raise RuntimeError(f"the attempt's activity failed: {outcome.error_message}")
    return AttemptReport.model_validate_json(outcome.result_json)


def first_attempt(store: TableJobStore, transaction_id: str) -> AttemptOrder:
    """The order of the job's first attempt, as its orchestration makes it when the job's
    time comes (from the stored record's generation and due time)."""
    stored = store.get(transaction_id)
    if stored is None:
        raise LookupError(f"job {transaction_id} is not in the store")
    return AttemptOrder(
        transaction_id=transaction_id,
        generation=stored.record.generation,
        due_at=stored.record.exec_at,
        attempt=1,
    )
