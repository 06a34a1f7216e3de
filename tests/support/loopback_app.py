"""The app's HTTP routes on a real socket (127.0.0.1, a free port), for HTTP clients.

A ThreadingHTTPServer turns each request into a real `func.HttpRequest` and calls the route's
function (found as AppClient finds it) on one event loop of its own, with the durable client
binding of a DurableHost. Keys are not checked (the Functions host does that); everything
after the host is the app's own code.

Interim: the lead's `local_durable_host` HTTP front end replaces this once it is on main.
"""

import asyncio
import inspect
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
from azure.durable_functions.models.utils import http_utils

from tests.support.app_client import Route, _routes

MAX_BODY = 10 * 1024 * 1024


class LoopbackApp:
    """Serves the app; `url` is its origin; `served` counts the requests answered."""

    def __init__(self, client_binding: str) -> None:
        self.client_binding = client_binding
        self.routes = _routes()
        self.served = 0
        # (function name, status) of every answer: what a generated run actually reached.
        self.answers: Counter[tuple[str, int]] = Counter()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server_thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        # The durable SDK keeps one aiohttp session (and its lock) per process, bound to the
        # loop that made it: this server's loop gets its own while it runs.
        self._saved = (http_utils._client_session, http_utils._session_lock)
        http_utils._client_session = None
        self._loop_thread.start()
        http_utils._session_lock = asyncio.run_coroutine_threadsafe(
            _new_lock(), self._loop
        ).result()
        self._server_thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        asyncio.run_coroutine_threadsafe(http_utils._close_session(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(10)
        self._loop.close()
        http_utils._client_session, http_utils._session_lock = self._saved

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | int:
        """The route and its parameters, or the status the Functions host would answer."""
        status = 404
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match:
                if method in route.methods:
                    return route, match.groupdict()
                status = 405
        return status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test's output is the test's report, not an access log

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY)) if length else b""
                found = app._route(self.command, parts.path)
                if isinstance(found, int):
                    # What the Functions host answers itself: no function for this path/method.
                    self._reply(found, {}, b"")
                    return
                route, route_params = found
                request = func.HttpRequest(
                    method=self.command,
                    url=f"{app.url}{self.path}",
                    headers=dict(self.headers.items()),
                    params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    route_params=route_params,
                    body=body,
                )
                arguments: dict[str, Any] = {"req": request}
                if "client" in inspect.signature(route.user_function).parameters:
                    arguments["client"] = app.client_binding
                response: func.HttpResponse = asyncio.run_coroutine_threadsafe(
                    route.user_function(**arguments), app._loop
                ).result()
                headers = dict(response.headers.items())
                headers.setdefault("Content-Type", response.mimetype)
                app.served += 1
                app.answers[route.function_name, response.status_code] += 1
                self._reply(response.status_code, headers, response.get_body())

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def __getattr__(self, name: str) -> Any:
                # Every method (TRACE too) reaches the route table, as at the Functions host.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        return Handler


async def _new_lock() -> asyncio.Lock:
    return asyncio.Lock()


@contextmanager
def serving(client_binding: str) -> Iterator[LoopbackApp]:
    app = LoopbackApp(client_binding)
    app.start()
    try:
        yield app
    finally:
        app.stop()
