"""The app's timer-triggered functions on the wall clock, at their NCRONTAB schedules.

Like the Functions host: six fields with seconds first, in UTC (WEBSITE_TIME_ZONE is not
read); an occurrence missed while the host was down is not made up (the host would pass
`past_due` once; the app's timers are idempotent sweeps, so the next occurrence does it).
"""

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import azure.functions as func
from azure.functions.timer import TimerRequest
from cronsim import CronSim

from local_durable_host.worker_calls import DURABLE_CLIENT, index_functions

log = logging.getLogger(__name__)


@dataclass
class TimerFunction:
    name: str
    schedule: str
    timer_parameter: str
    client_parameters: tuple[str, ...]
    user_function: Callable[..., Any]
    next_at: datetime | None = None


def timer_functions(app: func.FunctionRegister) -> list[TimerFunction]:
    found = []
    for function in index_functions(app):
        bindings = [binding.get_dict_repr() for binding in function.get_bindings()]
        for trigger in (b for b in bindings if b.get("type") == "timerTrigger"):
            found.append(
                TimerFunction(
                    name=str(function.get_function_name()),
                    schedule=str(trigger["schedule"]),
                    timer_parameter=str(trigger["name"]),
                    client_parameters=tuple(
                        str(b["name"]) for b in bindings if b.get("type") == DURABLE_CLIENT
                    ),
                    user_function=function.get_user_function(),
                )
            )
    return found


class TimerTriggers:
    """Runs each timer function when its next occurrence has come (see `run_due`)."""

    def __init__(
        self,
        app: func.FunctionRegister,
        client_binding: Callable[[], str],
        run_async: Callable[[Any], Any],
        now: datetime,
    ) -> None:
        self.functions = timer_functions(app)
        self._client_binding = client_binding
        self._run_async = run_async
        for function in self.functions:
            function.next_at = _next(function.schedule, now)

    def next_due(self) -> datetime | None:
        moments = [f.next_at for f in self.functions if f.next_at is not None]
        return min(moments) if moments else None

    def run_due(self, now: datetime) -> None:
        """Invoke every function whose occurrence is due, once, and schedule its next."""
        for function in self.functions:
            if function.next_at is None or function.next_at > now:
                continue
            function.next_at = _next(function.schedule, now)
            arguments: dict[str, Any] = {function.timer_parameter: TimerRequest(past_due=False)}
            arguments.update({name: self._client_binding() for name in function.client_parameters})
            try:
                returned = function.user_function(**arguments)
                if inspect.isawaitable(returned):
                    self._run_async(returned)
            except Exception:
                # As on the host: the invocation fails and is logged; the schedule goes on.
                log.exception("timer function %s failed", function.name)


def _next(schedule: str, after: datetime) -> datetime:
    # cronsim reads six fields with seconds first, as NCRONTAB; `after` is in UTC.
    return next(CronSim(schedule, after))
