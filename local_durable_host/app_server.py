"""The app's HTTP functions over real HTTP on a loopback port, as the Functions host serves them.

Each request is routed by method and route template to the app's function, checked against
the function's auth level (a function key or the master key for `function`, the master key
for `admin`, sent as `x-functions-key` or `?code=`), and handed to it as a real
`func.HttpRequest`, with the durable client binding for its `durable_client_input`.
Async functions run on one event loop, as in the Python worker (the Durable SDK keeps one
HTTP session per loop).
"""

import asyncio
import hmac
import inspect
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from local_durable_host.worker_calls import DURABLE_CLIENT, index_functions

# The host's default request size limit (maxRequestBodySize, 100 MB).
MAX_BODY_BYTES = 100 * 1024 * 1024
# A browser on this machine may be tricked into calling a loopback port under another name
# (DNS rebinding): only these Host names are served.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
# A route parameter, `{name}` or `{name:constraint}`; split() yields the names.
log = logging.getLogger(__name__)
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
class Keys:
    """The keys the local host accepts: the master key works wherever a function key does."""

    function_key: str
    master_key: str

    def allow(self, auth_level: str, presented: str | None) -> bool:
        if auth_level == "anonymous":
            return True
        if not presented:
            return False
        accepted = (
            [self.master_key] if auth_level == "admin" else [self.function_key, self.master_key]
        )
        return any(hmac.compare_digest(presented.encode(), key.encode()) for key in accepted)


@dataclass(frozen=True)
class AppResponse:
    status: int
    headers: dict[str, str]
    body: bytes


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


class AppServer:
    """Serves the app's HTTP functions on `127.0.0.1:port` from background threads."""

    def __init__(
        self,
        app: func.FunctionRegister,
        client_binding: Callable[[], str],
        keys: Keys,
        port: int = 0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """`loop`: run the app's async functions on this running loop (a test's own: the
        Durable SDK's one HTTP session per process works only on the loop that made it),
        which must stay free while requests are served; else on a loop of the server's own."""
        self._functions = http_functions(app)
        self._client_binding = client_binding
        self._keys = keys
        self._loop_thread: threading.Thread | None = None
        if loop is not None:
            self._loop = loop
        else:
            self._loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(
                target=self._loop.run_forever, name="app-event-loop", daemon=True
            )
            self._loop_thread.start()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="app-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._loop_thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=5)

    def run_async(self, awaitable: Any) -> Any:
        """Await `awaitable` on the app's event loop (for the host's other triggers)."""
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._loop).result()

    def call(self, method: str, target: str, headers: dict[str, str], body: bytes) -> AppResponse:
        """Route and run one request; the host's answers for no route (404), no key (401)."""
        parts = urlsplit(target)
        allowed_methods: set[str] = set()
        for function in self._functions:
            match = function.pattern.fullmatch(parts.path)
            if match is None:
                continue
            if method not in function.methods:
                allowed_methods |= function.methods
                continue
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            presented = _header(headers, "x-functions-key") or query.get("code")
            if not self._keys.allow(function.auth_level, presented):
                return AppResponse(401, {}, b"")
            return self._invoke(function, method, target, headers, query, match, body)
        if allowed_methods:
            return AppResponse(405, {"Allow": ", ".join(sorted(allowed_methods))}, b"")
        return AppResponse(404, {}, b"")

    def _invoke(
        self,
        function: HttpFunction,
        method: str,
        target: str,
        headers: dict[str, str],
        query: dict[str, str],
        match: re.Match[str],
        body: bytes,
    ) -> AppResponse:
        request = func.HttpRequest(
            method=method,
            url=f"{self.base_url}{target}",
            headers=headers,
            params=query,
            # The host decodes route values (`a%20b` is "a b").
            route_params={name: unquote(value) for name, value in match.groupdict().items()},
            body=body,
        )
        arguments: dict[str, Any] = {function.request_parameter: request}
        arguments.update({name: self._client_binding() for name in function.client_parameters})
        if inspect.iscoroutinefunction(function.user_function):
            future = asyncio.run_coroutine_threadsafe(
                function.user_function(**arguments), self._loop
            )
            response = future.result()
        else:
            response = function.user_function(**arguments)
        if not isinstance(response, func.HttpResponse):
            raise TypeError(f"{function.name} returned {type(response).__name__}")
        reply_headers = dict(response.headers.items())
        if not any(name.lower() == "content-type" for name in reply_headers):
            reply_headers["Content-Type"] = response.mimetype
        return AppResponse(response.status_code, reply_headers, response.get_body())


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class BodyRefused(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback_host(host_header: str | None) -> bool:
    """Whether a Host header names this machine (127.0.0.1, localhost or [::1], any port)."""
    return (host_header or "").rsplit(":", 1)[0].lower() in LOOPBACK_NAMES


def read_body(headers: Message, stream: BufferedIOBase) -> bytes:
    """The request body by Content-Length or chunked, at most MAX_BODY_BYTES."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(stream)
    text = (headers.get("Content-Length") or "0").strip()
    if not text.isdigit():
        raise BodyRefused(400, "Content-Length is not a number")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise BodyRefused(413, "the body is larger than the host accepts")
    return stream.read(length) if length else b""


def _read_chunked(stream: BufferedIOBase) -> bytes:
    body = bytearray()
    while True:
        size_line = stream.readline(64).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise BodyRefused(400, "a chunk size is not hexadecimal") from None
        if size < 0 or len(body) + size > MAX_BODY_BYTES:
            raise BodyRefused(413, "the body is larger than the host accepts")
        if size == 0:
            while stream.readline(8192).strip():  # trailers, up to the blank line
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline(64)  # the CRLF after the chunk


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _handler_for(server: AppServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are written separately: with Nagle's algorithm the body waits for
        # the client's delayed ACK of the headers, 40 ms per response on Linux.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            if not is_loopback_host(self.headers.get("Host")):
                self._refuse(400, b"the local host serves only loopback names")
                return
            try:
                body = read_body(self.headers, self.rfile)
            except BodyRefused as refused:
                self._refuse(refused.status, str(refused).encode())
                return
            headers = {name: value for name, value in self.headers.items()}
            try:
                reply = server.call(self.command, self.path, headers, body)
            except Exception as error:  # the host answers 500 when a function raises
                log.exception("%s %s failed", self.command, urlsplit(self.path).path)
                message = json.dumps({"error": type(error).__name__}).encode()
                reply = AppResponse(500, {"Content-Type": "application/json"}, message)
            self._reply(reply)

        def _refuse(self, status: int, message: bytes) -> None:
            # The body, if any, was not read: the connection cannot carry another request.
            self.close_connection = True
            self._reply(AppResponse(status, {"Connection": "close"}, message))

        def _reply(self, reply: AppResponse) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, QUERY...) reaches the route table too and gets the
            # host's 405 or 404, not http.server's 501: a server error to an API client.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines would show `?code=` keys; the app logs what it needs

    return Handler
