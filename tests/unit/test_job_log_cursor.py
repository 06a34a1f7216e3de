"""A crafted job-log cursor is refused with InvalidCursor, whatever it holds."""

import base64

import pytest

from storage.job_log import InvalidCursor
from storage.job_log.entries import decode_cursor, encode_cursor


def crafted(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        # Fits the length cap, but json.loads raised RecursionError on it before.
        crafted(b"[" * 1500),
        crafted(b'{"v":1,"after":' + b"[" * 1400),
        crafted(b"\xff"),
        "not base64!",
    ],
)
def test_crafted_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("job-1", cursor)


def test_a_real_cursor_still_decodes() -> None:
    assert decode_cursor("job-1", encode_cursor("job-1", "entry-7")) == "entry-7"
