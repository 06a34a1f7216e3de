"""The app's HTTP functions over real HTTP on a loopback port, as the Functions host serves them.

Each request is routed by method and route template to the app's function, checked against
the function's auth level (a function key or the master key for `function`, the master key
for `admin`, sent as `x-functions-key` or `?code=`), and handed to it as a real
`func.HttpRequest`, with the durable client binding for its `durable_client_input`.
Async functions run on one event loop, as in the Python worker (the Durable SDK keeps one
HTTP session per loop).

Every request is judged on its head before its body is read: the route, the key, and (as
the Functions host does not, and a developer's browser needs) whether a browser sent it
from another site. (A route that takes JSON refuses any other body itself, with a 415
problem, before it changes anything.) Each request has Kestrel's limits (the Functions
host's web server): time for its headers, a minimum rate for its body, sizes; whatever
arrives gets an HTTP answer, never a dropped connection.

Whole at ~440 lines: the server and its request handler, which admits a request (route, key,
site) before reading its body, in that order; the checks themselves are request_checks.py.
"""

import asyncio
import hmac
import io
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from local_durable_host.http_functions import (
    AppResponse,
    FunctionFailed,
    HttpCall,
    HttpFunction,
    call_http,
    close_durable_session,
    http_functions,
)
from local_durable_host.request_checks import (
    LOOPBACK_NAMES,
    MAX_BODY_BYTES,
    BodyRefused,
    RequestTimedOut,
    TimedSocketReader,
    cross_site_refusal,
    header,
    is_loopback_host,
    read_body,
)
from local_durable_host.worker_processes import WorkerProcesses

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may take. The defaults are Kestrel's (the Functions host's web
    server; dotnet/aspnetcore src/Servers/Kestrel/Core/src/KestrelServerLimits.cs), except
    the body size, which the Functions host raises to 100 MB."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_request_line_bytes: int = 8 * 1024  # 414 beyond
    max_header_bytes: int = 32 * 1024  # all headers together; 431 beyond
    # Between requests on a kept-alive connection; then it is closed without a word.
    keep_alive_seconds: float = 120.0
    # From a request's first byte to the end of its headers; then a 408.
    headers_seconds: float = 30.0
    # The body must arrive at this average rate once the grace period is over; else a 408.
    body_bytes_per_second: float = 240.0
    body_grace_seconds: float = 5.0


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


class AppServer:
    """Serves the app's HTTP functions on `127.0.0.1:port` from background threads."""

    def __init__(
        self,
        app: func.FunctionRegister,
        client_binding: Callable[[], str],
        keys: Keys,
        port: int = 0,
        loop: asyncio.AbstractEventLoop | None = None,
        limits: Limits = Limits(),
        host_names: frozenset[str] = LOOPBACK_NAMES,
        workers: WorkerProcesses | None = None,
    ) -> None:
        """`loop`: run the app's async functions on this running loop (a test's own: the
        Durable SDK's one HTTP session per process works only on the loop that made it),
        which must stay free while requests are served; else on a loop of the server's own.
        `host_names`: the Host names served (a test may add one that its browser maps to
        loopback; the socket is on 127.0.0.1 whatever the name). `workers`: run the
        functions in these worker processes (worker_processes.py), as the Functions host
        does; None: in this process."""
        self._functions = http_functions(app)
        self._workers = workers
        self._client_binding = client_binding
        self._keys = keys
        self.limits = limits
        self.host_names = host_names
        self._loop_thread: threading.Thread | None = None
        if loop is not None:
            self._loop = loop
        else:
            self._loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(
                target=self._loop.run_forever, name="app-event-loop", daemon=True
            )
            self._loop_thread.start()
        self._server = _Server(("127.0.0.1", port), _handler_for(self))
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
            close_durable_session(self._loop)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=5)

    def run_async(self, awaitable: Any) -> Any:
        """Await `awaitable` on the app's event loop (for the host's other triggers)."""
        return asyncio.run_coroutine_threadsafe(_awaited(awaitable), self._loop).result()

    def admit(self, method: str, target: str, headers: dict[str, str]) -> "Admitted | AppResponse":
        """Route a request by its head: the function to call, or the host's answer (404,
        405, 401, and this host's own refusals of what a browser sent from another site)."""
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
            presented = header(headers, "x-functions-key") or query.get("code")
            if not self._keys.allow(function.auth_level, presented):
                return AppResponse(401, {}, b"")
            if (refusal := cross_site_refusal(method, headers)) is not None:
                return _plain(403, refusal)
            return Admitted(function, query, match)
        if allowed_methods:
            return AppResponse(405, {"Allow": ", ".join(sorted(allowed_methods))}, b"")
        return AppResponse(404, {}, b"")

    def call(self, method: str, target: str, headers: dict[str, str], body: bytes) -> AppResponse:
        """Route and run one request whose body is already read."""
        admitted = self.admit(method, target, headers)
        if isinstance(admitted, AppResponse):
            return admitted
        return self.invoke(admitted, method, target, headers, body)

    def invoke(
        self,
        admitted: "Admitted",
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> AppResponse:
        """The function's response; FunctionFailed if it raised."""
        function = admitted.function
        parts = urlsplit(target)
        # The URL the caller used, as the host gives it: its Host header (checked to be one
        # of ours), so that a page opened at http://localhost:7071 sees its own origin.
        host = header(headers, "host") or self.base_url.removeprefix("http://")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        call = HttpCall(
            function_name=function.name,
            method=method,
            url=f"http://{host}{path}",
            headers=headers,
            params=admitted.query,
            # The host decodes route values (`a%20b` is "a b").
            route_params={
                name: unquote(value) for name, value in admitted.match.groupdict().items()
            },
            body=body,
            client_binding=self._client_binding() if function.client_parameters else "",
        )
        if self._workers is not None:
            return self._workers.call_http(call)
        return call_http(function, call, self._loop)


@dataclass(frozen=True)
class Admitted:
    """A request the host will hand to `function`, once its body is read."""

    function: HttpFunction
    query: dict[str, str]
    match: re.Match[str]


class _Server(ThreadingHTTPServer):
    # Connections beyond the listen backlog (5 by default) wait for the client's SYN
    # retries, seconds each: a burst of clients (a test's, a browser's) would see stalls.
    request_queue_size = 128


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _handler_for(server: AppServer) -> type[BaseHTTPRequestHandler]:
    limits = server.limits

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Until a request line says otherwise: an answer to a broken one has a status line.
        default_request_version = "HTTP/1.1"
        # Headers and body are written separately: with Nagle's algorithm the body waits for
        # the client's delayed ACK of the headers, 40 ms per response on Linux.
        disable_nagle_algorithm = True
        _reader: TimedSocketReader
        _buffered: "io.BufferedReader[TimedSocketReader]"
        _answered = False
        _blank_line = False

        def setup(self) -> None:
            super().setup()
            self._reader = TimedSocketReader(self.connection)
            self._buffered = self.rfile = io.BufferedReader(self._reader)

        def handle(self) -> None:
            self.close_connection = True
            while True:
                # After an empty line the request goes on, on the time it had.
                if not self._blank_line:
                    self._reader.limit(limits.keep_alive_seconds)
                    try:
                        if not self._buffered.peek(1):
                            return  # the client closed the connection
                    except OSError:  # idle too long (a timeout is one), or reset
                        return
                    self._reader.limit(limits.headers_seconds)
                self._answered = self._blank_line = False
                self.handle_one_request()
                if self._reader.expired and not self._answered:
                    self._refuse(408, b"the request did not arrive in time")
                if self.close_connection:
                    return

        def parse_request(self) -> bool:
            words = len(self.raw_requestline.split())
            if words == 0 and self.raw_requestline.endswith(b"\n"):
                # An empty line before a request is ignored (RFC 9112, 2.2); the request
                # that follows still has only what is left of its time.
                self._blank_line = True
                self.close_connection = False
                return False
            self.requestline, self.command, self.request_version = "", "", "HTTP/1.1"
            if len(self.raw_requestline) > limits.max_request_line_bytes:
                self.send_error(414)
                return False
            if words in (1, 2):
                # HTTP/0.9 has no status line to answer with: refused in HTTP/1.1.
                self.send_error(400, "Bad request line")
                return False
            if not super().parse_request():
                return False
            size = sum(len(name) + len(value) + 4 for name, value in self.headers.items())
            if size > limits.max_header_bytes:
                self.send_error(431, "Request header fields too large")
                return False
            return True

        def send_response(self, code: int, message: str | None = None) -> None:
            self._answered = True
            # An answer (small, or the reference page's script) is written within the time a
            # request's headers get: a client that does not read it cannot hold a thread.
            self.connection.settimeout(limits.headers_seconds)
            super().send_response(code, message)

        def _serve(self) -> None:
            try:
                self._reply(self._answer())
            except RequestTimedOut:
                if not self._answered:
                    self._refuse(408, b"the request body did not arrive in time")
            except OSError:  # the client went away (or stopped reading) mid-answer
                self.close_connection = True
            except Exception:  # a bug of this host: still an answer, never a dropped line
                log.exception("%s %s failed in the host", self.command, urlsplit(self.path).path)
                self.close_connection = True
                if not self._answered:
                    self._refuse(500, b"the local host failed; see its log")

        def _answer(self) -> AppResponse:
            if not is_loopback_host(self.headers.get("Host"), server.host_names):
                self.close_connection = True
                return _closing(400, b"the local host serves only loopback names")
            headers = {name: value for name, value in self.headers.items()}
            admitted = server.admit(self.command, self.path, headers)
            if isinstance(admitted, AppResponse):
                # The body, if any, was not read: the connection cannot carry another request.
                self.close_connection = True
                return _closing(admitted.status, admitted.body, admitted.headers)
            self._reader.limit(limits.body_grace_seconds, 1 / limits.body_bytes_per_second)
            try:
                body = read_body(self.headers, self.rfile, limits.max_body_bytes)
            except BodyRefused as refused:
                self.close_connection = True
                return _closing(refused.status, str(refused).encode())
            try:
                return server.invoke(admitted, self.command, self.path, headers, body)
            except FunctionFailed as failed:  # the host answers 500 when a function raises
                if failed.__cause__ is not None:  # raised in this process (a worker logs its own)
                    path = urlsplit(self.path).path
                    log.error("%s %s failed", self.command, path, exc_info=failed.__cause__)
                message = json.dumps({"error": failed.error_type}).encode()
                return AppResponse(500, {"Content-Type": "application/json"}, message)

        def _refuse(self, status: int, message: bytes) -> None:
            self.close_connection = True
            self._reply(_closing(status, message))

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


def _closing(status: int, message: bytes, headers: dict[str, str] | None = None) -> AppResponse:
    """An answer after which the connection is closed (its body, if any, was not read)."""
    return AppResponse(status, {**(headers or {}), "Connection": "close"}, message)


def _plain(status: int, message: str) -> AppResponse:
    return AppResponse(status, {"Content-Type": "text/plain; charset=utf-8"}, message.encode())
