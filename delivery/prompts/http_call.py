"""`http.call`: send one HTTP request to a URL and record what came back."""

import json
import re
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from delivery.egress import DestinationRefused
from delivery.prompts.context import FiringContext, PayloadRules
from scheduling.redaction import redact_url
from scheduling.webhook_signing import RESERVED_HEADER_PREFIX as SIGNING_HEADER_PREFIX
from scheduling.webhook_signing import SigningNotConfigured, signed_headers

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# Headers that describe one connection, not the request: a caller setting them could smuggle
# a second request or confuse the target's framing. Host is ours to set from the URL.
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
# Response headers whose values the outcome shows (an allowlist: cookies, tokens and any
# header not named here are dropped); a Location is shown through redact_url.
KEPT_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "date",
        "etag",
        "last-modified",
        "location",
        "retry-after",
        "x-request-id",
        "request-id",
        "x-correlation-id",
    }
)
# Used with fullmatch: `$` alone would also accept a name that ends in a newline ("Host\n").
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
# RFC 9110 field-value, restricted to ASCII: visible characters, with spaces and tabs only
# between them. h11 refuses anything else when the job fires, and its error quotes the value.
HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x21-\x7e \t]*[\x21-\x7e])?)?")
MAX_HEADER_VALUE_LENGTH = 8192
TRANSACTION_HEADER = "X-Scheduler-Transaction-Id"
# Headers the scheduler sets, now or later: a payload's own copy, in any casing, would be sent
# beside ours, and a receiver that reads the first one would de-duplicate on the caller's id.
RESERVED_HEADER_PREFIX = "x-scheduler-"
USER_AGENT = "durable-scheduler/0.1"


def folded(name: str) -> str:
    """A header name as receivers on CGI and WSGI read it: case and `_` versus `-` do not
    count (`webhook_id` arrives there as HTTP_WEBHOOK_ID, like `webhook-id`)."""
    return name.lower().replace("_", "-")


def is_reserved(name: str) -> bool:
    """Whether a header is the scheduler's to send, in any casing or folding."""
    return folded(name).startswith((RESERVED_HEADER_PREFIX, SIGNING_HEADER_PREFIX))


def _rules(info: ValidationInfo) -> PayloadRules | None:
    rules = info.context.get("rules") if isinstance(info.context, dict) else None
    return rules if isinstance(rules, PayloadRules) else None


def _check_header_value(name: str, value: str) -> None:
    """Refuse a value outside HEADER_VALUE; the message names the header, never the value."""
    if len(value) > MAX_HEADER_VALUE_LENGTH:
        raise ValueError(
            f"header {name!r} value is longer than {MAX_HEADER_VALUE_LENGTH} characters"
        )
    if not HEADER_VALUE.fullmatch(value):
        raise ValueError(
            f"header {name!r} value must be visible ASCII characters, with spaces or tabs "
            "only between them (no leading or trailing whitespace, no control characters "
            "or line breaks)"
        )


class HttpCallPayload(BaseModel):
    # strict: `"timeout_seconds": true` was stored as 1.0 and "10" as 10.0; a caller who sends
    # the wrong type gets told, not guessed at.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    method: HttpMethod = "POST"
    url: str = Field(min_length=1, max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict, max_length=64)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    timeout_seconds: float | None = Field(default=None, gt=0)
    # The target's own words are kept in the outcome only when asked for: a target may echo
    # what it was sent, credentials included.
    record_response_body: bool = False

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _vet_url(cls, value: str, info: ValidationInfo) -> str:
        rules = _rules(info)
        if rules is not None:
            rules.vet_url(value)
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for name, value in headers.items():
            if not HEADER_NAME.fullmatch(name):
                raise ValueError(f"header name {name[:64]!r} is not a valid HTTP token")
            if name.lower() in FORBIDDEN_HEADERS:
                raise ValueError(f"header {name!r} is set by the scheduler, not by the payload")
            # Create time only, like the other rules: a job accepted before these checks fires
            # as it was accepted, without its X-Scheduler-* copies (see request_headers), and
            # h11's refusal of a value becomes a failed outcome that quotes nothing.
            if _rules(info) is not None:
                if folded(name) in FORBIDDEN_HEADERS:
                    raise ValueError(
                        f"header {name!r} is set by the scheduler, not by the payload "
                        "(receivers read '_' as '-')"
                    )
                if folded(name).startswith(RESERVED_HEADER_PREFIX):
                    raise ValueError(
                        f"header {name!r} is reserved: X-Scheduler-* headers are set by the "
                        "scheduler"
                    )
                if folded(name).startswith(SIGNING_HEADER_PREFIX):
                    raise ValueError(
                        f"header {name!r} is reserved: webhook-* headers carry the "
                        "scheduler's Standard Webhooks signature"
                    )
                _check_header_value(name, value)
            if any(char in value for char in "\r\n\0"):
                raise ValueError(f"header {name!r} contains a line break or NUL")
        return headers

    @field_validator("timeout_seconds")
    @classmethod
    def _bound_timeout(cls, value: float | None, info: ValidationInfo) -> float | None:
        rules = _rules(info)
        limit = rules.settings.http_call_max_timeout_seconds if rules else None
        if value is not None and limit is not None and value > limit:
            raise ValueError(f"timeout_seconds must be at most {limit:g}")
        return value

    @model_validator(mode="after")
    def _one_body(self, info: ValidationInfo) -> "HttpCallPayload":
        if self.body is not None and "json_body" in self.model_fields_set:
            raise ValueError("give either `body` (text) or `json`, not both")
        rules = _rules(info)
        limit = rules.settings.http_call_max_request_body_bytes if rules else None
        size = len(self.content() or b"")
        if limit is not None and size > limit:
            raise ValueError(f"request body is {size} bytes; the limit is {limit}")
        return self

    def content(self) -> bytes | None:
        if "json_body" in self.model_fields_set:
            return json.dumps(self.json_body, separators=(",", ":")).encode()
        return None if self.body is None else self.body.encode()

    def request_headers(self, transaction_id: str) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if "json_body" in self.model_fields_set:
            headers["Content-Type"] = "application/json"
        elif self.body is not None:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        lowered = {name.lower() for name in self.headers}
        headers = {name: value for name, value in headers.items() if name.lower() not in lowered}
        # A job accepted before X-Scheduler-* and webhook-* were reserved (in any folding)
        # fires without its own copies.
        own = {
            name: value
            for name, value in self.headers.items()
            if not is_reserved(name) and folded(name) not in FORBIDDEN_HEADERS
        }
        return {**headers, **own, TRANSACTION_HEADER: transaction_id}


# Statuses that say "not now" rather than "never": worth another attempt, whatever the method
# (the target answered; X-Scheduler-Transaction-Id lets it drop a duplicate).
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Methods whose request may be repeated with the same effect (RFC 9110, 9.2.2): the only ones
# retried after a failure that may come after the target received the request.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Failures that happen before a byte of the request is sent: a retry cannot duplicate it.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAX_CONNECT_ERROR_LENGTH = 300
# A delay-seconds Retry-After is capped here (about 31 years): more is only a long "never".
MAX_RETRY_AFTER_SECONDS = 999_999_999


class HttpCallOutcome(BaseModel):
    ok: bool
    status_code: int | None = None
    elapsed_ms: int
    headers: dict[str, str] = Field(default_factory=dict)
    body_excerpt: str = ""
    body_truncated: bool = False
    error: str | None = None
    retryable: bool = False
    retry_after_seconds: float | None = None


def run_http_call(payload: HttpCallPayload, context: FiringContext) -> HttpCallOutcome:
    """Send the request; every failure of the target is an outcome, never an exception."""
    # A failure after the request may have reached the target is retried only when sending it
    # twice does no harm; a non-idempotent request is left to the caller (see the README).
    return send_signed(
        payload,
        context,
        message_id=context.message_id(),
        may_repeat=payload.method in IDEMPOTENT_METHODS,
    )


def send_signed(
    payload: HttpCallPayload, context: FiringContext, *, message_id: str, may_repeat: bool
) -> HttpCallOutcome:
    """Send `payload`'s request, signed as `message_id` when signing keys are configured.

    `may_repeat`: whether a failure after the request may have reached the target is worth
    another attempt.
    """
    settings = context.settings
    # Capped again here: a job accepted under a higher limit fires under today's.
    timeout = min(
        payload.timeout_seconds or settings.http_call_default_timeout_seconds,
        settings.http_call_max_timeout_seconds,
    )
    started = time.monotonic()
    content = payload.content()
    headers = payload.request_headers(context.transaction_id)
    try:
        keys = settings.webhook_signing_keys()
    except SigningNotConfigured as error:
        # Never sent unsigned when signing was asked for; retried, so a fixed setting helps.
        return HttpCallOutcome(ok=False, elapsed_ms=0, error=str(error), retryable=True)
    # The wall clock, not the app's clock: receivers compare the timestamp with their own
    # clocks to refuse a replayed request.
    headers |= signed_headers(keys, message_id, int(time.time()), content or b"")

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        with (
            context.open_http_client(timeout) as client,
            client.stream(
                payload.method,
                payload.url,
                headers=headers,
                content=content,
            ) as response,
        ):
            excerpt, truncated = _read_excerpt(response, settings.http_call_response_excerpt_bytes)
    except DestinationRefused as refused:
        # Not retryable: the same policy would refuse it again.
        return HttpCallOutcome(
            ok=False, elapsed_ms=elapsed_ms(), error=f"destination refused: {refused.reason}"
        )
    except httpx.TimeoutException as error:
        # The client's one deadline covers every phase, so any timeout means the same thing.
        # Connect and pool timeouts come before sending; the others after.
        return HttpCallOutcome(
            ok=False,
            elapsed_ms=elapsed_ms(),
            error=f"no complete response within {timeout:g} s",
            retryable=isinstance(error, _NOTHING_SENT) or may_repeat,
        )
    except httpx.ConnectError as error:
        # Resolution, TCP or TLS failed: the text names the host and the OS or TLS reason,
        # never the path, query, headers or body of the request.
        return HttpCallOutcome(
            ok=False,
            elapsed_ms=elapsed_ms(),
            error=f"could not connect: {_one_line(str(error), _MAX_CONNECT_ERROR_LENGTH)}",
            retryable=True,
        )
    except httpx.LocalProtocolError as error:
        # h11 refused to send what we built; its text may quote a header value, and sending
        # the same request again would fail the same way.
        return HttpCallOutcome(
            ok=False,
            elapsed_ms=elapsed_ms(),
            error=f"the request could not be sent ({type(error).__name__})",
        )
    except httpx.TransportError as error:  # reset mid-exchange, the target broke HTTP, ...
        return HttpCallOutcome(
            ok=False,
            elapsed_ms=elapsed_ms(),
            error=f"the connection failed during the exchange ({type(error).__name__})",
            retryable=may_repeat,
        )
    except Exception as error:  # any other failure of the target is still an outcome
        # Only the type: an unknown error's text could quote the request.
        return HttpCallOutcome(
            ok=False,
            elapsed_ms=elapsed_ms(),
            error=f"the request failed ({type(error).__name__})",
        )
    status = response.status_code
    return HttpCallOutcome(
        ok=200 <= status < 300,
        status_code=status,
        elapsed_ms=elapsed_ms(),
        headers={
            name: redact_url(value) if name.lower() == "location" else value
            for name, value in response.headers.items()
            if name.lower() in KEPT_RESPONSE_HEADERS
        },
        body_excerpt=excerpt if payload.record_response_body else "",
        body_truncated=truncated and payload.record_response_body,
        error=None if 200 <= status < 300 else f"target answered {status} {response.reason_phrase}",
        retryable=status in RETRYABLE_STATUSES,
        retry_after_seconds=retry_after_seconds(
            response.headers.get("retry-after"), context.clock()
        ),
    )


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _read_excerpt(response: httpx.Response, limit: int) -> tuple[str, bool]:
    """At most `limit` bytes of the body; stops reading there (the client's deadline ends a
    body that trickles)."""
    received = bytearray()
    for chunk in response.iter_raw():
        received.extend(chunk)
        if len(received) > limit:
            return received[:limit].decode("utf-8", errors="replace"), True
    return received.decode("utf-8", errors="replace"), False


# delay-seconds = 1*DIGIT (RFC 9110, 10.2.3), ASCII digits only: str.isdigit() takes "²".
_DELAY_SECONDS = re.compile(r"[0-9]+")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delay-seconds or HTTP-date) as seconds from now, if it parses."""
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        significant = text.lstrip("0") or "0"
        if len(significant) > len(str(MAX_RETRY_AFTER_SECONDS)):
            return float(MAX_RETRY_AFTER_SECONDS)
        return float(min(int(significant), MAX_RETRY_AFTER_SECONDS))
    try:
        moment = parsedate_to_datetime(text)
        if moment.tzinfo is None:
            return None
        return max(0.0, (moment - now).total_seconds())
    # The header is the target's: whatever it holds, an unusable one is ignored, never raised.
    except (TypeError, ValueError, OverflowError, IndexError, AttributeError):
        return None
