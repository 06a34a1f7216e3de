"""`scheduler receive`: a local HTTP receiver that checks each delivery's Standard Webhooks
signature (with the `standardwebhooks` library) and hands it to a printer.

A verified delivery is answered 204, any other 401 (so the scheduler records a failed
attempt). Bodies may be JSON, text or empty: the signature covers the raw bytes, whatever
they are, and is checked before anything reads them.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from standardwebhooks import Webhook, WebhookVerificationError

# The scheduler sends at most HTTP_CALL_MAX_REQUEST_BODY_BYTES (64 KiB by default).
MAX_BODY_BYTES = 1 << 20
# A client that stops sending mid-request holds a thread no longer than this.
SOCKET_TIMEOUT_SECONDS = 30.0
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

BodyKind = Literal["empty", "json", "text", "binary"]


@dataclass(frozen=True)
class Delivery:
    """One request that reached the receiver; `refusal` says why it was not verified."""

    received_at: datetime
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    refusal: str | None

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")

    @property
    def transaction_id(self) -> str | None:
        return self.headers.get("x-scheduler-transaction-id")

    def body_kind(self) -> BodyKind:
        if not self.body:
            return "empty"
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return "binary"
        try:
            json.loads(text)
        except ValueError:
            return "text"
        return "json"

    def body_value(self) -> Any:
        """The body as JSON value, text, or None when empty (base64 when binary)."""
        kind = self.body_kind()
        if kind == "empty":
            return None
        if kind == "binary":
            import base64

            return base64.b64encode(self.body).decode()
        text = self.body.decode("utf-8")
        return json.loads(text) if kind == "json" else text


class SecretError(ValueError):
    """A secret that is not `whsec_` and base64."""


def verifiers_of(secrets: list[str]) -> list[Webhook]:
    webhooks = []
    for number, secret in enumerate(secrets, start=1):
        try:
            webhooks.append(Webhook(secret))
        except Exception:  # binascii.Error, EmptyWebhookSecretError: never quote the value
            raise SecretError(f"secret {number} is not whsec_ followed by base64") from None
    return webhooks


def refusal_of(webhooks: list[Webhook], body: bytes, headers: dict[str, str]) -> str | None:
    """None when one of the secrets verifies the delivery; else why none does."""
    reason = "no secret to verify with"
    for webhook in webhooks:
        try:
            webhook.verify(body, headers, json_parse=False)
        # The library raises ValueError (binascii.Error, UnicodeDecodeError among them) for a
        # malformed signature header or a body that is not UTF-8, not only its own error.
        except WebhookVerificationError as error:
            reason = str(error) or "the signature does not match"
        except ValueError:
            reason = "malformed webhook headers, or a body that is not UTF-8"
        else:
            return None
    return reason


class Receiver:
    """Listens on `host:port` (0: any free port) until `stop()` or until `count` verified
    deliveries were handed to `on_delivery`. `webhooks` None: nothing is verified and every
    delivery is accepted (marked unverified)."""

    def __init__(
        self,
        host: str,
        port: int,
        webhooks: list[Webhook] | None,
        on_delivery: Callable[[Delivery], None],
        count: int | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._on_delivery = on_delivery
        self._count = count
        self._accepted = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}/"

    def serve(self) -> None:
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def stop(self) -> None:
        # shutdown() waits for serve_forever to return: never call it from its own thread.
        threading.Thread(target=self._server.shutdown, daemon=True).start()

    def _received(self, delivery: Delivery) -> None:
        with self._lock:
            self._on_delivery(delivery)
            if delivery.verified or self._webhooks is None:
                self._accepted += 1
                if self._count is not None and self._accepted >= self._count:
                    self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = SOCKET_TIMEOUT_SECONDS
            server_version = "scheduler-receive"
            sys_version = ""

            def _handle(self) -> None:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    self._answer(HTTPStatus.LENGTH_REQUIRED)
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0:
                    self._answer(HTTPStatus.BAD_REQUEST)
                    return
                if length > MAX_BODY_BYTES:
                    self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                    return
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                webhooks = receiver._webhooks
                refusal = refusal_of(webhooks, body, headers) if webhooks is not None else None
                verified = webhooks is not None and refusal is None
                accepted = verified or webhooks is None
                self._answer(HTTPStatus.NO_CONTENT if accepted else HTTPStatus.UNAUTHORIZED)
                receiver._received(
                    Delivery(
                        received_at=datetime.now(UTC),
                        method=self.command,
                        path=self.path,
                        headers=headers,
                        body=body,
                        verified=verified,
                        refusal=refusal,
                    )
                )

            def _answer(self, status: HTTPStatus) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: each delivery is printed by the caller, not as an access log."""

        for method in METHODS:
            setattr(Handler, f"do_{method}", Handler._handle)
        return Handler
