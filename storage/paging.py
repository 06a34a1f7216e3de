"""Paging through the job listing: the store's continuation token inside an opaque cursor."""

import base64
import binascii
import hashlib
import json

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Room for two keys of Table Storage's 1 KiB each, escaped, then base64-encoded.
_MAX_CURSOR_LENGTH = 8192


class InvalidCursor(ValueError):
    """A cursor this API did not return (altered, truncated, or for another listing)."""


def _check(scope: str, token: dict[str, str]) -> str:
    # Not a secret MAC: it catches edited, truncated and cross-listing cursors. A forged one
    # could only start a listing the caller may read anyway at another place.
    canonical = json.dumps([scope, token], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(token: dict[str, str], scope: str) -> str:
    """The cursor for the page that starts at the store's `token`, within listing `scope`."""
    raw = json.dumps({"t": token, "c": _check(scope, token)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> dict[str, str]:
    """The store's continuation token inside a cursor of this listing; InvalidCursor if not."""
    invalid = InvalidCursor("cursor is not one this listing returned")
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        position = json.loads(raw)
    # RecursionError: a crafted cursor of deeply nested JSON arrays.
    except (binascii.Error, ValueError, RecursionError):
        raise invalid from None
    token = position.get("t") if isinstance(position, dict) else None
    if (
        not isinstance(token, dict)
        or not token
        or "PartitionKey" not in token
        or not all(
            name in ("PartitionKey", "RowKey") and isinstance(value, str)
            for name, value in token.items()
        )
        or position.get("c") != _check(scope, token)
    ):
        raise invalid
    return token
