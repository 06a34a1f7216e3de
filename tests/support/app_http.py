"""The app's HTTP functions on a loopback port, for tests that need a real HTTP client
(a browser): routed by method and route, keys checked by auth level, real HttpRequests.

A stop-gap until the local durable host's own front end lands; it keeps that one's shape
(`AppServer(app, client_binding, keys)`, `base_url`, `close()`). Async functions run on the
event loop given (the test's own): the Durable SDK keeps one HTTP session per process, tied
to the loop that made it, so every caller of the SDK must share that loop. That loop must
stay free while a request is served: drive the browser with Playwright's async API.
"""

import asyncio
import hmac
import inspect
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from local_durable_host.worker_calls import DURABLE_CLIENT, index_functions

MAX_BODY_BYTES = 1024 * 1024
REQUEST_SECONDS = 60
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Keys:
    function_key: str
    master_key: str

    def allow(self, auth_level: str, presented: str | None) -> bool:
        if auth_level == "anonymous":
            return True
        accepted = [self.master_key]
        if auth_level == "function":
            accepted.append(self.function_key)
        return bool(presented) and any(
            hmac.compare_digest(str(presented).encode(), key.encode()) for key in accepted
        )


@dataclass(frozen=True)
class _Function:
    methods: frozenset[str]
    route: str
    pattern: re.Pattern[str]
    auth_level: str
    request_parameter: str
    client_parameters: tuple[str, ...]
    user_function: Callable[..., Any]


def _functions(app: func.FunctionRegister) -> list[_Function]:
    found = []
    for function in index_functions(app):
        bindings = [binding.get_dict_repr() for binding in function.get_bindings()]
        for trigger in (b for b in bindings if b.get("type") == "httpTrigger"):
            route = str(trigger["route"])
            found.append(
                _Function(
                    methods=frozenset(str(m).upper() for m in trigger.get("methods") or []),
                    route=route,
                    pattern=re.compile("/api/" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route)),
                    auth_level=str(trigger.get("authLevel", "function")).lower(),
                    request_parameter=str(trigger["name"]),
                    client_parameters=tuple(
                        str(b["name"]) for b in bindings if b.get("type") == DURABLE_CLIENT
                    ),
                    user_function=function.get_user_function(),
                )
            )
    # Literal routes win over templated ones, as on the Functions host.
    return sorted(found, key=lambda f: f.route.count("{"))


class AppServer:
    """Serves the app's HTTP functions on 127.0.0.1 from background threads."""

    def __init__(
        self,
        app: func.FunctionRegister,
        client_binding: Callable[[], str],
        keys: Keys,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._functions = _functions(app)
        self._client_binding = client_binding
        self._keys = keys
        self._loop = loop
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def call(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        for function in self._functions:
            match = function.pattern.fullmatch(parts.path)
            if match is None or method not in function.methods:
                continue
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            lowered = {name.lower(): value for name, value in headers.items()}
            if not self._keys.allow(
                function.auth_level, lowered.get("x-functions-key") or query.get("code")
            ):
                return 401, {}, b""
            request = func.HttpRequest(
                method=method,
                url=f"{self.base_url}{target}",
                headers=headers,
                params=query,
                route_params=match.groupdict(),
                body=body,
            )
            arguments: dict[str, Any] = {function.request_parameter: request}
            arguments.update({name: self._client_binding() for name in function.client_parameters})
            result = function.user_function(**arguments)
            if inspect.isawaitable(result):
                result = asyncio.run_coroutine_threadsafe(_awaited(result), self._loop).result(
                    REQUEST_SECONDS
                )
            response: func.HttpResponse = result
            reply = dict(response.headers.items())
            if not any(name.lower() == "content-type" for name in reply) and response.mimetype:
                reply["Content-Type"] = response.mimetype
            return response.status_code, reply, response.get_body()
        return 404, {}, b""


async def _awaited(result: Any) -> Any:
    return await result


def _handler_for(server: AppServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(413, {}, b"")
                return
            body = self.rfile.read(length) if length else b""
            try:
                status, headers, content = server.call(
                    self.command, self.path, dict(self.headers.items()), body
                )
            except Exception:
                log.exception("%s %s failed", self.command, urlsplit(self.path).path)
                status, headers, content = 500, {}, b""
            self._reply(status, headers, content)

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines carry `?code=` keys

    return Handler
