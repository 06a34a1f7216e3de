import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from scheduling.models import PendingJob
from scheduling.paging import InvalidCursor, decode_cursor, encode_cursor, page_of

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def pending(transaction_id: str, minutes: int) -> PendingJob:
    return PendingJob(
        transaction_id=transaction_id,
        exec_at=T0 + timedelta(minutes=minutes),
        prompt_type="log.append",
        accepted_at=T0,
    )


def test_pages_cover_every_job_once_in_order() -> None:
    jobs = [pending(f"job-{index:02d}", minutes=index % 7) for index in range(23)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = page_of(reversed(jobs), 10, cursor)
        seen.extend(job.transaction_id for job in page.jobs)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    expected = sorted(jobs, key=lambda job: (job.exec_at, job.transaction_id))
    assert seen == [job.transaction_id for job in expected]


def test_exact_fit_has_no_next_page() -> None:
    page = page_of([pending("a", 1), pending("b", 2)], 2, None)
    assert page.next_cursor is None


def test_cursor_survives_removal_of_its_job() -> None:
    jobs = [pending("a", 1), pending("b", 2), pending("c", 3)]
    first = page_of(jobs, 1, None)
    assert first.next_cursor is not None
    rest = page_of([job for job in jobs if job.transaction_id != "a"], 5, first.next_cursor)
    assert [job.transaction_id for job in rest.jobs] == ["b", "c"]


@pytest.mark.parametrize(
    "cursor", ["garbage", "eyJ4IjoxfQ", "!!!", encode_cursor(pending("a", 1))[:-3]]
)
def test_tampered_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        page_of([pending("a", 1)], 5, cursor)


def crafted(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def position(exec_at: object, transaction_id: object = "a") -> str:
    return crafted(json.dumps({"exec_at": exec_at, "id": transaction_id}).encode())


@pytest.mark.parametrize(
    "cursor",
    [
        # Valid ISO-8601, but out of datetime's range once in UTC (OverflowError before).
        position("0001-01-01T00:00:00+01:00"),
        position("9999-12-31T23:30:00-01:00"),
        position(1796119200),
        position("2026-12-01T00:00:00Z", 7),
        position("2026-12-01T00:00:00"),
        crafted(b"[" * 100_000),  # RecursionError in json.loads before
        crafted(json.dumps(["exec_at", "id"]).encode()),
        crafted(b"\xff\xfe"),
    ],
)
def test_crafted_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
    with pytest.raises(InvalidCursor):
        page_of([pending("a", 1)], 5, cursor)


def test_cursor_position_is_normalised_to_utc() -> None:
    assert decode_cursor(position("2026-12-01T01:00:00+01:00", "b")) == (
        "2026-12-01T00:00:00Z",
        "b",
    )
