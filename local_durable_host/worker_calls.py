"""Find an app's durable functions and call them the way the Python worker does.

The worker hands an orchestrator `func.OrchestrationContext(<json>)` and an entity
`func.EntityContext(<json>)` under the trigger's parameter name, and returns their JSON
string; it decodes and encodes activity values with `ActivityTriggerConverter`.
"""

import asyncio
import atexit
import inspect
import json
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.durable_functions.models.utils import http_utils
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
DURABLE_CLIENT = "durableClient"

# The trigger property that renames a function for the extension (it wins over the function name).
_NAME_PROPERTY = {
    ORCHESTRATION_TRIGGER: "orchestration",
    ACTIVITY_TRIGGER: "activity",
    ENTITY_TRIGGER: "entityName",
}
# The SDK appends the orchestrator's state to the exception message after this label.
OUT_OF_PROC_DATA_LABEL = "\n\n$OutOfProcData$:"


@dataclass(frozen=True)
class DurableFunction:
    """One durable-triggered function of the app, as the worker would invoke it."""

    durable_name: str
    function_name: str
    trigger_parameter: str
    client_parameters: tuple[str, ...]
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class DurableFunctions:
    """The app's durable functions by trigger type, keyed by lower-cased durable name."""

    orchestrators: dict[str, DurableFunction] = field(default_factory=dict)
    activities: dict[str, DurableFunction] = field(default_factory=dict)
    entities: dict[str, DurableFunction] = field(default_factory=dict)


@dataclass(frozen=True)
class OrchestratorReply:
    """The state JSON an orchestrator call produced (returned, or attached to its exception)."""

    state: dict[str, Any]
    raw: str
    raised: str | None = None

    @property
    def is_done(self) -> bool:
        return bool(self.state.get("isDone", False))

    @property
    def error(self) -> str | None:
        error = self.state.get("error")
        return str(error) if error else self.raised

    @property
    def actions(self) -> list[list[dict[str, Any]]]:
        actions: list[list[dict[str, Any]]] = self.state.get("actions") or []
        return actions


@dataclass(frozen=True)
class ActivityOutcome:
    """An activity's JSON result, or the `<Type>: <message>` the worker reports when it raised."""

    result_json: str | None = None
    error_message: str | None = None


def discover(app: func.FunctionRegister) -> DurableFunctions:
    """Index the app's orchestrator, activity and entity functions by the names the host uses."""
    found = DurableFunctions()
    tables = {
        ORCHESTRATION_TRIGGER: found.orchestrators,
        ACTIVITY_TRIGGER: found.activities,
        ENTITY_TRIGGER: found.entities,
    }
    for function in index_functions(app):
        bindings = [binding.get_dict_repr() for binding in function.get_bindings()]
        triggers = [b for b in bindings if b.get("type") in tables]
        if not triggers:
            continue
        trigger = triggers[0]
        trigger_type = str(trigger["type"])
        function_name = function.get_function_name() or function.get_user_function().__name__
        durable_name = str(trigger.get(_NAME_PROPERTY[trigger_type]) or function_name)
        clients = tuple(str(b["name"]) for b in bindings if b.get("type") == DURABLE_CLIENT)
        _require_parameters(
            function.get_user_function(), function_name, (trigger["name"], *clients)
        )
        tables[trigger_type][durable_name.lower()] = DurableFunction(
            durable_name=durable_name,
            function_name=function_name,
            trigger_parameter=str(trigger["name"]),
            client_parameters=clients,
            user_function=function.get_user_function(),
        )
    return found


def index_functions(app: func.FunctionRegister) -> list[func.Function]:
    """`app.get_functions()`, callable more than once per process (the worker calls it once)."""
    # The worker indexes an app once per process; get_functions() remembers the names it saw
    # and rejects them as duplicates on a second call, so each host indexes with a clean slate.
    seen_before = app.functions_bindings
    app.functions_bindings = None
    try:
        return app.get_functions()
    finally:
        app.functions_bindings = seen_before


def _require_parameters(
    user_function: Callable[..., Any], function_name: str, names: tuple[str, ...]
) -> None:
    # The worker passes bindings as keyword arguments and refuses to index a mismatch; the SDK
    # wraps orchestrators and entities in `handle(context)`, so their binding must be "context".
    parameters = inspect.signature(user_function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    missing = [name for name in names if name not in parameters]
    if missing:
        raise ValueError(
            f"function {function_name!r}: bindings {missing} are not parameters of "
            f"{list(parameters)}; the Python worker would refuse to index this app"
        )


def call_orchestrator(function: DurableFunction, context_json: str) -> OrchestratorReply:
    """Run one orchestrator episode; a raised exception still carries the state after a label."""
    context = func.OrchestrationContext(context_json)
    try:
        returned = function.user_function(**{function.trigger_parameter: context})
    except Exception as error:
        message = str(error)
        state_at = message.find(OUT_OF_PROC_DATA_LABEL)
        if state_at < 0:
            # Raised before the SDK could describe its state: the extension fails the instance.
            return OrchestratorReply(state={}, raw="", raised=_worker_error_message(error))
        raw = message[state_at + len(OUT_OF_PROC_DATA_LABEL) :]
        return OrchestratorReply(state=json.loads(raw), raw=raw)
    raw = str(returned)
    return OrchestratorReply(state=json.loads(raw), raw=raw)


def call_entity(function: DurableFunction, batch_json: str) -> dict[str, Any]:
    """Run one entity batch and return its parsed result JSON."""
    context = func.EntityContext(batch_json)
    returned = function.user_function(**{function.trigger_parameter: context})
    result: dict[str, Any] = json.loads(str(returned))
    return result


def call_activity(
    function: DurableFunction,
    input_json: str | None,
    client_binding: str,
    run_async: Callable[[Any], Any] | None = None,
) -> ActivityOutcome:
    """Decode the input, run the (sync or async) activity, encode its result like the worker;
    an async one is awaited by `run_async` (the app's one event loop), else on a loop of its
    own (see _AsyncActivities)."""
    try:
        value = ActivityTriggerConverter.decode(
            meta.Datum(value=input_json, type="json"), trigger_metadata=None
        )
        arguments: dict[str, Any] = {function.trigger_parameter: value}
        arguments.update({name: client_binding for name in function.client_parameters})
        returned = function.user_function(**arguments)
        if inspect.isawaitable(returned):
            returned = (run_async or _run_async_activity)(_as_coroutine(returned))
        encoded = ActivityTriggerConverter.encode(returned, expected_type=None)
    except Exception as error:
        return ActivityOutcome(error_message=_worker_error_message(error))
    return ActivityOutcome(result_json=str(encoded.value))


async def _as_coroutine(awaitable: Any) -> Any:
    return await awaitable


class _AsyncActivities:
    """One event loop on a thread of its own for async activities, as the worker runs every
    async function on its one loop. The SDK keeps one aiohttp session per process, bound to
    the loop that made it (`http_utils._get_session`); the test's own loop has made one, so
    this loop keeps a session of its own and swaps it in while one of its activities runs
    (one at a time, which the tests do not notice: the activities that await are short).
    The local host awaits async activities on its app server's loop instead: there the app's
    routes run at the same time, and a swapped session would be theirs."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._swap = threading.Lock()
        self._session: Any = None
        self._session_lock: Any = None
        thread = threading.Thread(
            target=self._loop.run_forever, name="durable-async-activities", daemon=True
        )
        thread.start()
        atexit.register(self._close)

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        with self._swap:
            saved = http_utils._client_session, http_utils._session_lock
            http_utils._client_session = self._session
            http_utils._session_lock = self._session_lock or asyncio.Lock()
            try:
                return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
            finally:
                self._session, self._session_lock = (
                    http_utils._client_session,
                    http_utils._session_lock,
                )
                http_utils._client_session, http_utils._session_lock = saved

    def _close(self) -> None:
        if self._session is not None and not self._session.closed:
            asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(5)


_async_activities: _AsyncActivities | None = None
_async_activities_guard = threading.Lock()


def _run_async_activity(coroutine: Coroutine[Any, Any, Any]) -> Any:
    global _async_activities
    with _async_activities_guard:
        if _async_activities is None:
            _async_activities = _AsyncActivities()
    return _async_activities.run(coroutine)


def _worker_error_message(error: BaseException) -> str:
    # The Python worker reports a failed invocation as "<ExceptionType>: <message>".
    return f"{type(error).__name__}: {error}"
