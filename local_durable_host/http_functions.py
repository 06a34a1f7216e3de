"""The app's HTTP functions as the Python worker finds and calls them.

The host routes a request and reads its body (app_server.py); the worker builds the
`func.HttpRequest`, calls the function with it and the durable client binding, and hands
back the response. What crosses between them (`HttpCall`, `AppResponse`) is plain data, as
over the host's gRPC channel to its language workers, so the call can run in this process
or in a worker process (worker_processes.py).
"""

import asyncio
import contextlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from local_durable_host.worker_calls import DURABLE_CLIENT, index_functions

# A route parameter, `{name}` or `{name:constraint}`; split() yields the names.
_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class HttpFunction:
    """One HTTP-triggered function of the app."""

    name: str
    methods: frozenset[str]
    route: str
    pattern: re.Pattern[str]
    auth_level: str  # "anonymous", "function" or "admin"
    request_parameter: str
    client_parameters: tuple[str, ...]
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class HttpCall:
    """One admitted request, body read, for the function named `function_name`."""

    function_name: str
    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]
    route_params: dict[str, str]
    body: bytes
    client_binding: str


@dataclass(frozen=True)
class AppResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class FunctionFailed(Exception):
    """The function raised (or its worker process exited): the host answers 500 with the
    error's type name, as the Functions host does."""

    def __init__(self, error_type: str) -> None:
        super().__init__(error_type)
        self.error_type = error_type


def http_functions(app: func.FunctionRegister) -> list[HttpFunction]:
    """The app's HTTP functions, literal routes before templated ones (the host's precedence)."""
    found = []
    for function in index_functions(app):
        bindings = [binding.get_dict_repr() for binding in function.get_bindings()]
        for trigger in (b for b in bindings if b.get("type") == "httpTrigger"):
            route = str(trigger["route"])
            template = "".join(
                f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part)
                for index, part in enumerate(_PARAMETER.split(route))
            )
            found.append(
                HttpFunction(
                    name=str(function.get_function_name()),
                    methods=frozenset(str(m).upper() for m in trigger.get("methods") or []),
                    route=route,
                    # The host matches routes without regard to case.
                    pattern=re.compile(f"/api/{template}", re.IGNORECASE),
                    auth_level=str(trigger.get("authLevel", "function")).lower(),
                    request_parameter=str(trigger["name"]),
                    client_parameters=tuple(
                        str(b["name"]) for b in bindings if b.get("type") == DURABLE_CLIENT
                    ),
                    user_function=function.get_user_function(),
                )
            )
    return sorted(found, key=lambda f: f.route.count("{"))


def is_async(function: HttpFunction) -> bool:
    return inspect.iscoroutinefunction(function.user_function)


def call_http(
    function: HttpFunction, call: HttpCall, loop: asyncio.AbstractEventLoop
) -> AppResponse:
    """Run the function on `call` (an async one on `loop`, the worker's one event loop);
    FunctionFailed if it raised."""
    if is_async(function):
        return asyncio.run_coroutine_threadsafe(call_http_async(function, call), loop).result()
    try:
        returned = function.user_function(**_arguments(function, call))
    except Exception as error:
        raise FunctionFailed(type(error).__name__) from error
    return _response(function, returned)


async def call_http_async(function: HttpFunction, call: HttpCall) -> AppResponse:
    """Await an async function on `call`; FunctionFailed if it raised."""
    try:
        returned = await function.user_function(**_arguments(function, call))
    except Exception as error:
        raise FunctionFailed(type(error).__name__) from error
    return _response(function, returned)


def _arguments(function: HttpFunction, call: HttpCall) -> dict[str, Any]:
    request = func.HttpRequest(
        method=call.method,
        url=call.url,
        headers=call.headers,
        params=call.params,
        route_params=call.route_params,
        body=call.body,
    )
    arguments: dict[str, Any] = {function.request_parameter: request}
    arguments.update({name: call.client_binding for name in function.client_parameters})
    return arguments


def _response(function: HttpFunction, returned: Any) -> AppResponse:
    if not isinstance(returned, func.HttpResponse):
        error = TypeError(f"{function.name} returned {type(returned).__name__}")
        raise FunctionFailed(type(error).__name__) from error
    headers = dict(returned.headers.items())
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = returned.mimetype
    return AppResponse(returned.status_code, headers, returned.get_body())


def close_durable_session(loop: asyncio.AbstractEventLoop) -> None:
    """Close the Durable SDK's one HTTP session, which lives on `loop` (the SDK has no
    shutdown hook: left open, asyncio reports an "Unclosed client session")."""

    async def close() -> None:
        from azure.durable_functions.models.utils.http_utils import _close_session

        await _close_session()

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
