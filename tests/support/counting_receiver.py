"""A webhook receiver on 127.0.0.1 that counts how many requests it serves at once.

Each request is held for `hold_seconds` before the answer, so attempts that overlap do
overlap here; the receiver keeps the highest number in flight it saw, and how often each
job (by its X-Transaction-Id header) called.
"""

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from delivery.prompts.http_call import TRANSACTION_HEADER


class CountingReceiver:
    def __init__(self, hold_seconds: float = 0.01) -> None:
        self.hold_seconds = hold_seconds
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: Counter[str] = Counter()
        self.arrivals: list[float] = []  # time.perf_counter(), for intervals
        self.arrived_at: list[float] = []  # time.time(), to compare with a job's exec_at
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/hook"

    def enter(self, transaction_id: str) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.calls[transaction_id] += 1
            self.arrivals.append(time.perf_counter())
            self.arrived_at.append(time.time())

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _handler(receiver: CountingReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            receiver.enter(self.headers.get(TRANSACTION_HEADER, ""))
            try:
                time.sleep(receiver.hold_seconds)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.wfile.flush()
            finally:
                # Out of flight once the whole answer is written, not before.
                receiver.leave()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
