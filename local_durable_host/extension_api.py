"""The Durable extension's HTTP API subset that `DurableOrchestrationClient` calls.

Status codes and bodies follow the extension's HttpApiHandler: start 202 with management
links (500 OrchestrationAlreadyExistsException while the id is active, 400 for an unknown
orchestrator), status 202 while active / 200 when finished / 404, purge 200 / 404,
terminate and raise-event 202 / 404 / 410, entity signal 202, entity read 200 / 404.
The server thread only reads and queues through the host; it never runs app code.

Whole at ~470 lines: the API's routes and the extension's answers to each, one table.
"""

import contextlib
import json
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

from local_durable_host.history import EventType, HistoryEvent
from local_durable_host.model import (
    ClientCall,
    Delivery,
    EntityView,
    InstanceAlreadyExistsError,
    InstanceView,
    RuntimeStatus,
    UnknownFunctionError,
    parse_stored_json,
)
from local_durable_host.request_checks import (
    BodyRefused,
    cross_site_refusal,
    is_loopback_host,
    read_body,
)


class TaskHub(Protocol):
    """What the API reads and queues through: the engine (engine.DurableHost)."""

    task_hub_name: str

    def start_instance(
        self, name: str, instance_id: str | None, input_json: str | None, version: str = ""
    ) -> str: ...

    def find_instance(self, instance_id: str) -> InstanceView | None: ...

    def purge_instance(self, instance_id: str) -> int | None: ...

    def request_termination(self, instance_id: str, reason: str) -> Delivery: ...

    def raise_event(self, instance_id: str, name: str, input_json: str | None) -> Delivery: ...

    def signal_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> None: ...

    def entity(self, name: str, key: str) -> EntityView: ...


# Stands for the host's system key, which the real management URLs carry: never show it to users.
SYSTEM_KEY = "durable-host-system-key"
RPC_PREFIX = "/durabletask/"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
_ACTIVE = frozenset({RuntimeStatus.PENDING, RuntimeStatus.RUNNING, RuntimeStatus.CONTINUED_AS_NEW})
_NOT_EMULATED = frozenset({"suspend", "resume", "rewind", "restart"})


class _Server(ThreadingHTTPServer):
    # The SDK client sends up to 30 requests at once; the default backlog of 5 drops the
    # rest, and aiohttp's retry then stalls for seconds.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping a kept-alive connection (its pool closing, a reset) is how
        # connections end, not an error to print.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class HttpReply:
    """Status, JSON body text (None: empty body) and extra headers of one response."""

    status: int
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class DurableHttpApi:
    """Serves the API on 127.0.0.1 (a free port) from a background thread and logs each call."""

    def __init__(self, host: TaskHub, calls_kept: int | None = None) -> None:
        self._host = host
        self._calls: deque[ClientCall] = deque(maxlen=calls_kept)
        self._calls_lock = threading.Lock()
        self._faults: list[tuple[str, str]] = []
        # Kept-alive connections, closed with the server (a handler thread would go on
        # serving a closed host).
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval keeps close() (shutdown waits for one poll) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="durable-host-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def rpc_base_url(self) -> str:
        return f"{self.origin}{RPC_PREFIX}"

    @property
    def webhook_base_url(self) -> str:
        return f"{self.origin}{WEBHOOK_PREFIX.rstrip('/')}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._calls_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def _opened(self, connection: socket.socket) -> None:
        with self._calls_lock:
            self._connections.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._calls_lock:
            self._connections.discard(connection)

    def fail_next(self, method: str, path_prefix: str) -> None:
        """Answer the next matching request with the extension's 500, as in an outage."""
        with self._calls_lock:
            self._faults.append((method.upper(), path_prefix))

    def _take_fault(self, method: str, relative: str) -> bool:
        with self._calls_lock:
            for fault in self._faults:
                if fault[0] == method and relative.startswith(fault[1]):
                    self._faults.remove(fault)
                    return True
        return False

    def client_calls(self) -> list[ClientCall]:
        with self._calls_lock:
            return list(self._calls)

    def client_binding(self) -> str:
        """The binding JSON of a `durable_client_input` (BindingHelper's out-of-proc payload)."""
        base = self.webhook_base_url
        creation = f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
        return json.dumps(
            {
                "taskHubName": self._host.task_hub_name,
                "connectionName": None,
                "creationUrls": {
                    "createNewInstancePostUri": f"{creation}?code={SYSTEM_KEY}",
                    "createAndWaitOnNewInstancePostUri": (
                        f"{creation}?timeout={{timeoutInSeconds}}"
                        f"&pollingInterval={{intervalInSeconds}}&code={SYSTEM_KEY}"
                    ),
                },
                "managementUrls": self._management_links("INSTANCEID", with_rewind=True),
                "baseUrl": base,
                "requiredQueryStringParameters": f"code={SYSTEM_KEY}",
                "rpcBaseUrl": self.rpc_base_url,
            }
        )

    def request(
        self, method: str, path: str, body: str | None, content_type: str | None
    ) -> tuple[int, Any]:
        """Serve a request in-process; `path` may be relative to the RPC base URL."""
        target = path if path.startswith("/") else f"{RPC_PREFIX}{path}"
        reply = self.handle(method, target, (body or "").encode(), content_type)
        return reply.status, None if reply.body is None else json.loads(reply.body)

    def handle(self, method: str, target: str, body: bytes, content_type: str | None) -> HttpReply:
        """Route one request and log it."""
        parts = urlsplit(target)
        prefix = next((p for p in (RPC_PREFIX, WEBHOOK_PREFIX) if parts.path.startswith(p)), None)
        relative = parts.path[len(prefix) :] if prefix else parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        text = body.decode("utf-8") if body else None
        if prefix is None:
            reply = HttpReply(404)
        elif self._take_fault(method, unquote(relative)):
            reply = _error(500, "Injected failure", "System.TimeoutException", None)
        else:
            segments = [unquote(s) for s in relative.strip("/").split("/")]
            reply = self._route(method, segments, query, text, content_type, target)
        with self._calls_lock:
            self._calls.append(ClientCall(method, unquote(relative), query, text, reply.status))
        return reply

    def _route(
        self,
        method: str,
        segments: list[str],
        query: dict[str, str],
        body: str | None,
        content_type: str | None,
        target: str,
    ) -> HttpReply:
        match (method, segments):
            case ("POST", ["orchestrators", name]):
                return self._start(name, None, query, body)
            case ("POST", ["orchestrators", name, instance_id]):
                return self._start(name, instance_id, query, body)
            case ("GET", ["instances", instance_id]):
                return self._status(instance_id, query, target)
            case ("DELETE", ["instances", instance_id]):
                return self._purge(instance_id)
            case ("POST", ["instances", instance_id, "terminate"]):
                delivery = self._host.request_termination(instance_id, query.get("reason", ""))
                return HttpReply(_delivery_status(delivery))
            case ("POST", ["instances", instance_id, "raiseEvent", event_name]):
                return self._raise_event(instance_id, event_name, body, content_type)
            case ("POST", ["entities", name, key]):
                return self._signal(name, key, query.get("op", ""), body, content_type)
            case ("GET", ["entities", name, key]):
                entity = self._host.entity(name, key)
                return (
                    HttpReply(200, entity.state_json or "null") if entity.exists else HttpReply(404)
                )
            case (_, ["instances", _, operation]) if operation in _NOT_EMULATED:
                return _error(501, f"'{operation}' is not emulated by DurableHost")
            case (_, ["instances", ""] | ["entities", _]):
                return _error(501, "instance and entity listing are not emulated by DurableHost")
        return HttpReply(404)

    def _start(
        self, name: str, instance_id: str | None, query: dict[str, str], body: str | None
    ) -> HttpReply:
        try:
            # The SDK posts its JSON text as a JSON string; the extension stores it re-serialised.
            input_json = _normalized_json(body) if body else None
        except json.JSONDecodeError as error:
            return _error(400, "Invalid JSON content", "Newtonsoft.Json.JsonReaderException", error)
        try:
            new_id = self._host.start_instance(
                name, instance_id, input_json, query.get("version", "")
            )
        except (UnknownFunctionError, ValueError) as error:
            return _error(
                400,
                "One or more of the arguments submitted is incorrect",
                "System.ArgumentException",
                error,
            )
        except InstanceAlreadyExistsError as error:
            return _error(
                500,
                "Something went wrong while processing your request",
                "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
                error,
            )
        links = self._management_links(new_id, with_rewind=False)
        headers = {"Location": links["statusQueryGetUri"], "Retry-After": "10"}
        return HttpReply(202, json.dumps(links), headers)

    def _status(self, instance_id: str, query: dict[str, str], target: str) -> HttpReply:
        view = self._host.find_instance(instance_id)
        if view is None:
            return HttpReply(404)
        show_input = _flag(query, "showInput", default=True)
        payload: dict[str, Any] = {
            "name": view.name,
            "instanceId": view.instance_id,
            "runtimeStatus": str(view.runtime_status),
            "input": view.input if show_input else None,
            "customStatus": view.custom_status,
            "output": view.output,
            "createdTime": _whole_seconds(view.created_time),
            "lastUpdatedTime": _whole_seconds(view.last_updated_time),
        }
        if (
            _flag(query, "showHistory", default=False)
            and view.runtime_status is not RuntimeStatus.PENDING
        ):
            show_output = _flag(query, "showHistoryOutput", default=False)
            payload["historyEvents"] = status_history(view, show_input, show_output)
        if view.runtime_status in _ACTIVE:
            headers = {"Location": f"{self.origin}{target}", "Retry-After": "5"}
            return HttpReply(202, json.dumps(payload), headers)
        return HttpReply(200, json.dumps(payload))

    def _purge(self, instance_id: str) -> HttpReply:
        deleted = self._host.purge_instance(instance_id)
        if deleted is None:
            return HttpReply(404)
        return HttpReply(200, json.dumps({"instancesDeleted": deleted}))

    def _raise_event(
        self, instance_id: str, event_name: str, body: str | None, content_type: str | None
    ) -> HttpReply:
        view = self._host.find_instance(instance_id)
        if view is None or view.runtime_status not in _ACTIVE:
            return HttpReply(404 if view is None else 410)
        if _media_type(content_type) != "application/json":
            return _error(400, "Only application/json request content is supported")
        try:
            input_json = _normalized_json(body or "")
        except json.JSONDecodeError as error:
            return _error(400, "Invalid JSON content", "Newtonsoft.Json.JsonReaderException", error)
        return HttpReply(
            _delivery_status(self._host.raise_event(instance_id, event_name, input_json))
        )

    def _signal(
        self, name: str, key: str, operation: str, body: str | None, content_type: str | None
    ) -> HttpReply:
        input_json: str | None = None
        if body and _media_type(content_type) == "application/json":
            try:
                input_json = _normalized_json(body)
            except json.JSONDecodeError as error:
                return _error(400, f"Could not parse JSON content: {error}")
        elif body:
            input_json = json.dumps(body)  # any other content is passed on as a string
        try:
            self._host.signal_entity(name, key, operation, input_json)
        except UnknownFunctionError as error:
            return _error(
                400,
                "One or more of the arguments submitted is incorrect",
                "System.ArgumentException",
                error,
            )
        return HttpReply(202)

    def _management_links(self, instance_id: str, *, with_rewind: bool) -> dict[str, str]:
        base = f"{self.webhook_base_url}/instances/{quote(instance_id, safe='')}"
        suffix = f"taskHub={self._host.task_hub_name}&connection=Storage&code={SYSTEM_KEY}"
        links = {
            "id": instance_id,
            "statusQueryGetUri": f"{base}?{suffix}",
            "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{suffix}",
            "terminatePostUri": f"{base}/terminate?reason={{text}}&{suffix}",
            "rewindPostUri": f"{base}/rewind?reason={{text}}&{suffix}",
            "purgeHistoryDeleteUri": f"{base}?{suffix}",
            "restartPostUri": f"{base}/restart?{suffix}",
            "suspendPostUri": f"{base}/suspend?reason={{text}}&{suffix}",
            "resumePostUri": f"{base}/resume?reason={{text}}&{suffix}",
        }
        if not with_rewind:
            del links["rewindPostUri"]  # the start response leaves it out
        return links


def status_history(view: InstanceView, show_input: bool, show_output: bool) -> list[HistoryEvent]:
    """The current execution's history reshaped as the status API shows it (`historyEvents`)."""
    items = [dict(event) for event in view.history]
    scheduled_at: dict[int, int] = {}
    dropped: set[int] = set()
    for index, item in enumerate(items):
        kind = EventType(item["EventType"])
        item["EventType"] = "".join(word.capitalize() for word in kind.name.split("_"))
        if kind is EventType.TASK_SCHEDULED:
            scheduled_at[item["EventId"]] = index
            item.pop("Version", None)
        elif kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED):
            origin = scheduled_at.get(item.pop("TaskScheduledId", -1))
            if origin is not None:
                # The extension folds the TaskScheduled event into its outcome.
                item["ScheduledTime"] = items[origin]["Timestamp"]
                item["FunctionName"] = items[origin]["Name"]
                if show_input:
                    item["Input"] = view.history[origin].get("Input")
                dropped.add(origin)
            if kind is EventType.TASK_COMPLETED:
                _show_result(item, show_output)
        elif kind is EventType.EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name")
            for hidden in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(hidden, None)
        elif kind is EventType.EXECUTION_COMPLETED:
            _show_result(item, show_output)
        elif kind is EventType.TIMER_FIRED:
            item.pop("TimerId", None)
        elif kind in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED):
            dropped.add(index)
        if not show_input:
            item.pop("Input", None)
        item.pop("EventId", None)
        item.pop("IsPlayed", None)
    return [item for index, item in enumerate(items) if index not in dropped]


def _show_result(item: HistoryEvent, show_output: bool) -> None:
    if show_output:
        item["Result"] = parse_stored_json(item.get("Result"))
    else:
        item.pop("Result", None)


def _handler_for(api: DurableHttpApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Headers and body are written separately: with Nagle's algorithm the body waits for
        # the client's delayed ACK of the headers, 40 ms per response on Linux.
        disable_nagle_algorithm = True
        # Keep-alive, as the Functions host's web server does: the SDK client pools its
        # connections, and a connection per request costs a connect and a thread each.
        protocol_version = "HTTP/1.1"
        # An idle kept-alive connection is closed after this long (the SDK's pool reconnects).
        timeout = 120

        def setup(self) -> None:
            super().setup()
            api._opened(self.connection)

        def finish(self) -> None:
            api._closed(self.connection)
            super().finish()

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def _serve(self) -> None:
            # Only this machine's names: a page elsewhere must not drive the task hub.
            headers = dict(self.headers.items())
            if not is_loopback_host(self.headers.get("Host")):
                reply = _error(400, "only loopback host names are served")
                self.close_connection = True
            elif cross_site_refusal(self.command, headers) is not None:
                # Nor a page of another site, through a browser on this machine.
                reply = _error(403, "refused: sent by a browser from a page of another site")
                self.close_connection = True
            else:
                try:
                    body = read_body(self.headers, self.rfile)
                except BodyRefused as refused:
                    reply = _error(refused.status, str(refused))
                    self.close_connection = True
                else:
                    content_type = self.headers.get("Content-Type")
                    reply = api.handle(self.command, self.path, body, content_type)
            payload = (reply.body or "").encode("utf-8")
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                # Or the client's pool keeps it and sends its next request into a closed one.
                self.send_header("Connection", "close")
            if reply.body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet; ClientCall records every request

    return Handler


def _error(
    status: int, message: str, exception_type: str | None = None, error: Exception | None = None
) -> HttpReply:
    # The extension's CreateErrorResponse: Message, plus the exception's fields when it has one.
    body: dict[str, Any] = {"Message": message}
    if exception_type is not None:
        body.update(ExceptionMessage=str(error or ""), ExceptionType=exception_type, StackTrace="")
    return HttpReply(status, json.dumps(body))


def _delivery_status(delivery: Delivery) -> int:
    return {Delivery.ACCEPTED: 202, Delivery.NOT_FOUND: 404, Delivery.GONE: 410}[delivery]


def _normalized_json(text: str) -> str:
    # Newtonsoft's ToString(Formatting.None): the same value, compact.
    return json.dumps(json.loads(text), separators=(",", ":"))


def _flag(query: dict[str, str], name: str, *, default: bool) -> bool:
    # bool.TryParse: "true"/"True"/"false"; anything else keeps the default.
    value = query.get(name, "").strip().lower()
    return {"true": True, "false": False}.get(value, default)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _whole_seconds(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
