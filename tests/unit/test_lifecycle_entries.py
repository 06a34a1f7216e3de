"""Lifecycle entries made from a record slot into the log's pages exactly once, in order."""

from datetime import UTC, datetime, timedelta

from scheduling.job_record import JobRecord
from storage.job_log import JobLogEntry
from storage.job_log.lifecycle import derived_entries, with_derived
from storage.sealing import SealedPayload

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ID = "3f0c2a57-8d4e-4c1b-9a6f-0b1c2d3e4f50"


def record(**changes: object) -> JobRecord:
    base = JobRecord(
        transaction_id=ID,
        generation="g",
        state="pending",
        prompt_type="log.append",
        exec_at=T0 + timedelta(hours=1),
        accepted_at=T0,
        updated_at=T0,
        sealed_payload=SealedPayload(
            alg="A256GCM", key_id="k", wrapped_key="", nonce="", ciphertext=""
        ),
    )
    return base.model_copy(update=changes)


def stored(minutes: int, kind: str = "log") -> JobLogEntry:
    return JobLogEntry(
        transaction_id=ID,
        entry_id=f"{(T0 + timedelta(minutes=minutes)).strftime('%Y%m%dT%H%M%S.%fZ')}-01-2-{kind}",
        timestamp=T0 + timedelta(minutes=minutes),
        kind=kind,
    )


def test_a_record_derives_accepted_and_the_removal_that_cancelled_it() -> None:
    assert [e.kind for e in derived_entries(record())] == ["accepted"]
    deleted = record(state="cancelled", cancelled_by="delete", updated_at=T0 + timedelta(hours=2))
    assert [e.kind for e in derived_entries(deleted)] == ["accepted", "cancelled"]
    wiped = record(state="cancelled", cancelled_by="wipe", updated_at=T0 + timedelta(hours=2))
    assert [e.kind for e in derived_entries(wiped)] == ["accepted", "wiped"]
    # A resume that found no run left in the schedule of a job that never ran.
    ended = record(state="cancelled", cancelled_by="ended", updated_at=T0 + timedelta(hours=2))
    *_, last = derived_entries(ended)
    assert (last.kind, last.message) == (
        "cancelled",
        "resumed with no run left in its schedule, before any run: cancelled",
    )


def test_an_entry_the_store_holds_is_not_added_again() -> None:
    accepted = derived_entries(record())[0]
    page, more = with_derived([accepted, stored(5)], [accepted], None, False, 10)
    assert page == [accepted, stored(5)]
    assert not more


def test_a_missing_entry_lands_on_the_page_its_id_belongs_to() -> None:
    cancelled = derived_entries(
        record(state="cancelled", cancelled_by="delete", updated_at=T0 + timedelta(minutes=30))
    )
    # First page of two stored entries, more stored after: only `accepted` belongs here.
    first, more = with_derived([stored(5), stored(10)], cancelled, None, True, 2)
    assert [e.kind for e in first] == ["accepted", "log"]
    assert more
    # The last stored page: the late `cancelled` entry comes with it.
    last, more = with_derived([stored(40)], cancelled, first[-1].entry_id, False, 10)
    assert [e.kind for e in last] == ["cancelled", "log"]
    assert not more


def test_a_page_never_grows_past_its_limit() -> None:
    derived = derived_entries(record())
    page, more = with_derived([stored(5)], derived, None, False, 1)
    assert [e.kind for e in page] == ["accepted"]
    assert more
