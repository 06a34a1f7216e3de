"""The listing cursor: the store's continuation token, opaque and bound to its listing."""

import base64
import json

import pytest

from storage.paging import InvalidCursor, decode_cursor, encode_cursor

TOKEN = {"PartitionKey": "202612010930", "RowKey": "2026-12-01T09:30:00.000000Z|abc"}
SCOPE = "(None, None, None, None)"


def crafted(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_cursor_gives_back_the_token_it_wraps() -> None:
    cursor = encode_cursor(TOKEN, SCOPE)
    assert decode_cursor(cursor, SCOPE) == TOKEN
    assert "PartitionKey" not in cursor  # opaque: callers do not build on its shape


def test_a_cursor_of_another_listing_is_refused() -> None:
    # Filters changed between pages would skip or repeat jobs silently.
    cursor = encode_cursor(TOKEN, SCOPE)
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, "(None, None, 'log.append', None)")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "eyJ4IjoxfQ",
        "!!!",
        encode_cursor(TOKEN, SCOPE)[:-3],
        crafted(json.dumps({"t": {**TOKEN, "RowKey": "moved"}, "c": "0" * 16}).encode()),
        crafted(json.dumps({"t": {"Other": "x"}, "c": "0" * 16}).encode()),
        crafted(json.dumps({"t": {}, "c": "0" * 16}).encode()),
        crafted(b"[" * 5000 + b"]" * 5000),
        "A" * 10_000,
    ],
)
def test_tampered_or_crafted_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, SCOPE)
