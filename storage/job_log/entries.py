"""What a job log entry is, the interface every log store implements, and its paging cursor."""

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote

from pydantic import AwareDatetime, BaseModel, Field

from storage.paging import InvalidCursor as InvalidCursor  # re-exported for the stores

LogKind = Literal[
    "accepted",
    "fired",
    "outcome",
    "cancelled",
    "wiped",
    "deleted",
    "log",
    "skipped",
    "paused",
    "resumed",
    "rescheduled",
    "replayed",
    "cleared",
    "expired",
    "kept",
    "callback",
]

# Table Storage returns at most 1000 entities per request; one page never needs more.
MAX_READ_LIMIT = 1000
# Both stores reject longer keys (Cosmos ids), and escaping may triple a key's length.
MAX_ID_LENGTH = 255
# Room for a MAX_ID_LENGTH id, JSON-escaped and base64-encoded, inside a cursor.
_MAX_CURSOR_LENGTH = 4096


class JobLogEntry(BaseModel):
    """One line of a job's log; `entry_id` is unique within the job and sorts in time order."""

    transaction_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    entry_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    timestamp: AwareDatetime
    kind: LogKind
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    message: str = ""
    fields: dict[str, Any] = Field(default_factory=dict)


class JobLogPage(BaseModel):
    entries: list[JobLogEntry]
    next_cursor: str | None = None


class JobLogNotConfigured(RuntimeError):
    """No job log store can be opened with the current settings; retrying cannot help."""


class JobLog(Protocol):
    """A log store. Implementations are safe to share across threads of one worker process."""

    def append(self, entry: JobLogEntry) -> None:
        """Store the entry; appending the same `entry_id` again replaces it (one entry per id)."""
        ...

    def read(self, transaction_id: str, limit: int, cursor: str | None = None) -> JobLogPage:
        """At most `limit` (1..MAX_READ_LIMIT) entries in time order, after `cursor` (the previous
        page's `next_cursor`; InvalidCursor if it is not one)."""
        ...


def make_entry_id(timestamp: datetime, unique: str) -> str:
    """An id that sorts by time first (fixed-width UTC stamp), then by a caller-chosen suffix."""
    return f"{timestamp.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{unique}"


# Within one attempt: fired, then the user's entry, then the outcome.
_ATTEMPT_ORDER = {"fired": 1, "log": 2, "outcome": 3}


def event_entry_id(kind: LogKind, at: datetime) -> str:
    """The id of a lifecycle entry written when it happens (accepted, cancelled, wiped)."""
    # "0-" sorts before an attempt's "01-..." at the same instant, anything else after: the
    # entries that start a run (accepted, replayed, due at once) come before its attempts.
    return make_entry_id(at, f"{0 if kind in ('accepted', 'replayed') else 9}-{kind}")


def attempt_entry_id(kind: LogKind, exec_at: datetime, attempt: int) -> str:
    """The id of an entry an attempt writes: from exec_at and the attempt, not the clock,
    so a re-run activity rewrites its entries instead of adding a second "fired" line."""
    return make_entry_id(exec_at, f"{attempt:02d}-{_ATTEMPT_ORDER[kind]}-{kind}")


def check_limit(limit: int) -> None:
    """Raise ValueError unless 1 <= limit <= MAX_READ_LIMIT."""
    if not 1 <= limit <= MAX_READ_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_READ_LIMIT}, not {limit}")


def _cursor_check(transaction_id: str, after: str) -> str:
    # Not a secret MAC: it catches edited, truncated and cross-job cursors. A forged one
    # could only move within the caller's own job, which the caller may read anyway.
    digest = hashlib.sha256(f"job-log-cursor\0{transaction_id}\0{after}".encode())
    return digest.hexdigest()[:16]


def encode_cursor(transaction_id: str, after_entry_id: str) -> str:
    """An opaque cursor for the page that starts after `after_entry_id` in this job's log."""
    raw = json.dumps(
        {"v": 1, "after": after_entry_id, "check": _cursor_check(transaction_id, after_entry_id)},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(transaction_id: str, cursor: str) -> str:
    """The entry id a cursor of this job starts after; InvalidCursor if it is not one of ours."""
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidCursor("the cursor is not one that reading this job's log returned")
    try:
        raw = base64.b64decode(
            cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True
        ).decode()
        position = json.loads(raw)
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; RecursionError is deeply nested
    # JSON in a crafted cursor.
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidCursor("the cursor is not one that reading this job's log returned") from None
    after = position.get("after") if isinstance(position, dict) else None
    if (
        not isinstance(position, dict)
        or position.get("v") != 1
        or not isinstance(after, str)
        or position.get("check") != _cursor_check(transaction_id, after)
    ):
        raise InvalidCursor("the cursor is not one that reading this job's log returned")
    return after


# Characters that Table Storage keys and Cosmos ids may not contain, plus '%' to stay reversible.
_KEY_UNSAFE = frozenset("%/\\#?") | {chr(code) for code in (*range(0x20), *range(0x7F, 0xA0))}


def storage_key(value: str) -> str:
    """`value` percent-escaped where a PartitionKey, RowKey or Cosmos id may not hold it."""
    return "".join(quote(char, safe="") if char in _KEY_UNSAFE else char for char in value)


def from_storage_key(key: str) -> str:
    """The value that `storage_key` escaped."""
    return unquote(key, errors="strict")
