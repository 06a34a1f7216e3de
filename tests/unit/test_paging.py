from datetime import UTC, datetime, timedelta

import pytest

from scheduling.models import PendingJob
from scheduling.paging import InvalidCursor, encode_cursor, page_of

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
