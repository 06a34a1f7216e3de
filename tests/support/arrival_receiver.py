"""A webhook receiver in a process of its own on 127.0.0.1 that notes when each request arrived
and which transaction it carried (the `X-Scheduler-Transaction-Id` header), and answers 200.

Its own process, so that it competes for no interpreter lock with what is measured (a
scheduler running in the benchmark's process has threads of its own), and an asyncio server
(aiohttp), so that it serves thousands of requests a second, new connections or kept alive:
`benchmarks/burst.py` measures how many before it relies on it.

`python -m tests.support.arrival_receiver --port P` runs the server; `ArrivalReceiver` starts
it (through local_servers: own process group, always stopped) and reads what it noted:

- any method on any path but those below: noted as (transaction id or "", arrival time as
  `time.time()`, taken when the request's head was read), then 200 with an empty body;
- `GET /_count`: `{"requests": n}`; `GET /_arrivals`: `{"arrivals": [[id, time], ...]}` in
  arrival order; `POST /_reset`: forget them.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from delivery.egress import DEFAULT_ALLOWED_PORTS
from delivery.prompts.http_call import TRANSACTION_HEADER
from tests.support.local_servers import HOST, REPO_ROOT, ServerProcess, free_port, start_server

# Accepted connections waiting for the server: a burst opens many at once.
BACKLOG = 4096


@dataclass(frozen=True)
class Arrival:
    transaction_id: str
    at: float  # time.time() when the request's head had been read


class ArrivalReceiver:
    """The receiver's process, started on construction; `close()` (or the `with`) stops it."""

    def __init__(self, workdir: Path) -> None:
        environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self._server: ServerProcess = start_server(
            "arrival-receiver",
            lambda port: [
                sys.executable,
                "-m",
                "tests.support.arrival_receiver",
                "--port",
                str(port),
            ],
            workdir,
            env=environment,
            port=_allowed_free_port(),
        )

    @property
    def url(self) -> str:
        """Where jobs send their calls."""
        return f"http://{HOST}:{self._server.port}/hook"

    @property
    def pid(self) -> int:
        return self._server.pid

    def count(self) -> int:
        """Requests noted so far (each call, duplicates included)."""
        requests: int = self._get("/_count")["requests"]
        return requests

    def arrivals(self) -> list[Arrival]:
        """Every request noted, in arrival order."""
        return [Arrival(str(tid), float(at)) for tid, at in self._get("/_arrivals")["arrivals"]]

    def calls(self) -> Counter[str]:
        """How often each transaction id arrived."""
        return Counter(arrival.transaction_id for arrival in self.arrivals())

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def output_tail(self) -> str:
        return self._server.output_tail()

    def close(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _get(self, path: str) -> Any:
        return json.loads(self._call("GET", path))

    def _call(self, method: str, path: str) -> bytes:
        # A literal http:// URL on the loopback address.
        request = urllib.request.Request(f"http://{HOST}:{self._server.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            body: bytes = answer.read()
            return body


def _allowed_free_port() -> int:
    """A free loopback port that http.call may call with the default HTTP_CALL_ALLOWED_PORTS
    (a few well-known service ports are refused by default)."""
    while True:
        port = free_port()
        if port in DEFAULT_ALLOWED_PORTS:
            return port


async def serve(port: int) -> None:
    from aiohttp import web

    noted: list[tuple[str, float]] = []

    async def note(request: web.Request) -> web.Response:
        arrived = time.time()
        await request.read()
        noted.append((request.headers.get(TRANSACTION_HEADER, ""), arrived))
        return web.Response()

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"requests": len(noted)})

    async def arrivals(_: web.Request) -> web.Response:
        return web.json_response({"arrivals": noted})

    async def reset(_: web.Request) -> web.Response:
        noted.clear()
        return web.Response()

    app = web.Application()
    app.router.add_get("/_count", count)
    app.router.add_get("/_arrivals", arrivals)
    app.router.add_post("/_reset", reset)
    app.router.add_route("*", "/{path:.*}", note)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port, backlog=BACKLOG).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
