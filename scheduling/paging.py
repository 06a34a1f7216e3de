"""Keyset paging over the registry's jobs, with an opaque cursor."""

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass

from scheduling.models import PendingJob
from scheduling.timing import format_utc, parse_exec_at

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class InvalidCursor(ValueError):
    """A cursor this API did not return (altered, truncated, or for another listing)."""


@dataclass(frozen=True)
class JobPage:
    jobs: list[PendingJob]
    next_cursor: str | None


def _sort_key(job: PendingJob) -> tuple[str, str]:
    return format_utc(job.exec_at), job.transaction_id


def encode_cursor(job: PendingJob) -> str:
    exec_at, transaction_id = _sort_key(job)
    raw = json.dumps({"exec_at": exec_at, "id": transaction_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (exec_at, transaction id) position a cursor stands for."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
        exec_at = format_utc(parse_exec_at(position["exec_at"]))
        transaction_id = position["id"]
    # RecursionError: a crafted cursor of deeply nested JSON arrays.
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError):
        raise InvalidCursor("cursor is not one this API returned") from None
    if not isinstance(transaction_id, str):
        raise InvalidCursor("cursor is not one this API returned")
    return exec_at, transaction_id


def page_of(jobs: Iterable[PendingJob], limit: int, cursor: str | None) -> JobPage:
    """The `limit` jobs after `cursor` in (exec_at, id) order."""
    ordered = sorted(jobs, key=_sort_key)
    if cursor is not None:
        after = decode_cursor(cursor)
        ordered = [job for job in ordered if _sort_key(job) > after]
    page = ordered[:limit]
    more = len(ordered) > limit
    return JobPage(jobs=page, next_cursor=encode_cursor(page[-1]) if more and page else None)
