"""Table Storage requests counted at the wire: a loopback proxy in front of Azurite.

Point a connection string at `TableRequestLog.connection_string` instead of Azurite's and
every request any client sends (the job store's, the job log's, one made later by code not
written yet) goes through it, is noted, and is forwarded unchanged; the answer comes back
unchanged. A count taken here does not depend on how the app builds its clients. Shared Key
signatures cover the path, not the host, so Azurite accepts what the proxy forwards.

Each request is noted with its method, its table, what it addressed (one entity, a query, the
table list, or an entity group transaction with the operations inside it) and whether it was
conditional (If-Match). Only to count and list: the hop costs time, so time nothing through it.
"""

import http.client
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from tests.support.local_servers import HOST, AzuriteService

# Per connection, not per message: never forwarded (RFC 9110, 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# `<table>(PartitionKey='..',RowKey='..')`, `<table>()`, `<table>`, `Tables`, `$batch`.
_RESOURCE = re.compile(r"/[^/]+/(?P<name>\$batch|[A-Za-z][A-Za-z0-9]*)(?P<keys>\(.*\))?$")
# An operation inside a batch body: its request line.
_BATCH_OPERATION = re.compile(
    rb"^(?P<method>GET|POST|PUT|PATCH|MERGE|DELETE) \S*?/(?P<table>[A-Za-z][A-Za-z0-9]*)"
    rb"(?P<keys>\([^ ]*\))? HTTP/1\.1\r?$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class TableRequest:
    """One request as it crossed the wire."""

    method: str
    table: str  # "" for the account's table list (create/list tables) and for a batch
    kind: str  # "entity", "query", "tables" or "batch"
    conditional: bool  # sent with If-Match on an ETag (not `*`, which matches any version)
    status: int
    at: float  # time.time() when it arrived at the proxy
    # For a batch: (method, table, kind) of each operation inside it.
    operations: tuple[tuple[str, str, str], ...] = field(default=())

    def describe(self) -> str:
        """`PUT jobs12 entity (If-Match) -> 204`, or a batch with its operations."""
        if self.kind == "batch":
            inner = ", ".join(f"{method} {table} {kind}" for method, table, kind in self.operations)
            return f"POST $batch of {len(self.operations)} [{inner}] -> {self.status}"
        target = f"{self.table} {self.kind}" if self.table else "Tables"
        condition = " (If-Match)" if self.conditional else ""
        return f"{self.method} {target}{condition} -> {self.status}"


class TableRequestLog:
    """The proxy, serving on a free loopback port until `close()` (or the `with` ends)."""

    def __init__(self, azurite: AzuriteService) -> None:
        upstream = urlsplit(azurite.table_endpoint)
        self._upstream = (upstream.hostname or HOST, upstream.port or 80)
        self._account_path = upstream.path
        self._azurite = azurite
        self._requests: list[TableRequest] = []
        self._lock = threading.Lock()
        self._connections = threading.local()
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def table_endpoint(self) -> str:
        return f"http://{HOST}:{self._server.server_port}{self._account_path}"

    @property
    def connection_string(self) -> str:
        """Azurite's connection string, its table endpoint replaced by the proxy's."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self._azurite.account_name};"
            f"AccountKey={self._azurite.account_key};TableEndpoint={self.table_endpoint};"
        )

    def requests(self) -> list[TableRequest]:
        """Every request so far, in the order their answers came back."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

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

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection: http.client.HTTPConnection | None = getattr(
            self._connections, "connection", None
        )
        for attempt in (1, 2):
            if connection is None:
                connection = http.client.HTTPConnection(*self._upstream, timeout=60)
                self._connections.connection = connection
            try:
                connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    connection.putheader(name, value)
                connection.endheaders(body)
                answer = connection.getresponse()
                return answer.status, answer.reason, answer.getheaders(), answer.read()
            except (ConnectionError, http.client.HTTPException):
                # Azurite closed a kept-alive connection: once more on a new one.
                connection.close()
                connection = self._connections.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _note(self, request: TableRequest) -> None:
        with self._lock:
            self._requests.append(request)


def classify(method: str, path: str, body: bytes = b"") -> tuple[str, str, tuple[Any, ...]]:
    """(table, kind, batch operations) of a request's method, URL path and body (a log line
    with no body lists no operations of a batch)."""
    match = _RESOURCE.match(unquote(urlsplit(path).path))
    name = match["name"] if match else ""
    if name == "$batch":
        operations = tuple(
            (
                found["method"].decode(),
                found["table"].decode(),
                "entity" if found["keys"] and found["keys"] != b"()" else "query",
            )
            for found in _BATCH_OPERATION.finditer(body)
        )
        return "", "batch", operations
    if not match or name == "Tables":
        return "", "tables", ()
    keys = match["keys"]
    is_entity = keys is not None and keys != "()"
    if method == "POST" or is_entity:
        return name, "entity", ()  # a POST to a table inserts one entity
    return name, "query", ()


def _handler(log: TableRequestLog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _proxy(self) -> None:
            arrived = time.time()
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self.send_error(501, "chunked request bodies are not forwarded")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = [
                (name, value)
                for name, value in self.headers.items()
                if name.lower() not in _HOP_BY_HOP
            ]
            status, reason, answer_headers, answer = log._forward(
                self.command, self.path, headers, body
            )
            table, kind, operations = classify(self.command, self.path, body)
            log._note(
                TableRequest(
                    method=self.command,
                    table=table,
                    kind=kind,
                    conditional=self.headers.get("If-Match", "*").strip() != "*",
                    status=status,
                    at=arrived,
                    operations=operations,
                )
            )
            # Not send_response: Azurite's own Date and Server headers are among those copied.
            self.send_response_only(status, reason)
            for name, value in answer_headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_PATCH = do_MERGE = do_DELETE = do_HEAD = _proxy

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
