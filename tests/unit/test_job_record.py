"""The moves between a job's states: who may write what, decided on the record read."""

from datetime import UTC, datetime, timedelta

import pytest

from scheduling.job_record import JobRecord, JobState, cancel, claim, finish_attempt
from storage.sealing import SealedPayload

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SEALED = SealedPayload(
    alg="A256GCM", key_id="local:k", wrapped_key="d2s=", nonce="bm9uY2U=", ciphertext="Y3Q="
)


def record(state: JobState = "pending", attempts: int = 0, generation: str = "g1") -> JobRecord:
    return JobRecord(
        transaction_id="3f0c2a57-8d4e-4c1b-9a6f-0b1c2d3e4f50",
        generation=generation,
        state=state,
        prompt_type="http.call",
        exec_at=NOW,
        accepted_at=NOW - timedelta(hours=1),
        updated_at=NOW - timedelta(hours=1),
        attempts=attempts,
        sealed_payload=SEALED,
    )


def test_the_first_attempt_claims_a_pending_job() -> None:
    verdict, claimed = claim(record(), "g1", NOW, 1, NOW)
    assert verdict == "claimed"
    assert claimed is not None
    assert (claimed.state, claimed.attempts, claimed.fired_at) == ("firing", 1, NOW)


def test_a_retry_claims_a_retrying_job_only_for_the_next_attempt() -> None:
    waiting = record("retrying", attempts=1).model_copy(update={"next_attempt_at": NOW})
    verdict, claimed = claim(waiting, "g1", NOW, 2, NOW)
    assert verdict == "claimed"
    assert claimed is not None
    assert claimed.next_attempt_at is None
    assert claim(waiting, "g1", NOW, 1, NOW)[0] == "decided"  # attempt 1 was recorded already


def test_a_cancelled_job_is_never_claimed() -> None:
    assert claim(record("cancelled"), "g1", NOW, 1, NOW) == ("cancelled", None)


def test_an_orchestration_of_another_generation_is_gone() -> None:
    # Deleted, and its Idempotency-Key used again: the old orchestration must not fire it.
    assert claim(record(generation="g2"), "g1", NOW, 1, NOW) == ("gone", None)
    assert claim(None, "g1", NOW, 1, NOW) == ("gone", None)


def test_a_rerun_of_a_claimed_attempt_resumes_it_and_a_rerun_after_its_outcome_does_not() -> None:
    assert claim(record("firing", attempts=1), "g1", NOW, 1, NOW) == ("resumed", None)
    assert claim(record("succeeded", attempts=1), "g1", NOW, 1, NOW) == ("decided", None)
    assert claim(record("failed", attempts=1), "g1", NOW, 1, NOW) == ("decided", None)


@pytest.mark.parametrize(
    ("outcome", "retry_after", "state"),
    [
        ({"ok": True}, None, "succeeded"),
        ({"ok": False}, None, "failed"),
        ({"ok": False}, timedelta(seconds=30), "retrying"),
    ],
)
def test_an_attempt_ends_in_the_state_its_outcome_calls_for(
    outcome: dict[str, bool], retry_after: timedelta | None, state: JobState
) -> None:
    finished = finish_attempt(record("firing", attempts=1), outcome, retry_after, NOW)
    assert finished.state == state
    assert finished.last_outcome == outcome
    assert finished.next_attempt_at == (NOW + retry_after if retry_after else None)


@pytest.mark.parametrize("state", ["pending", "retrying"])
def test_a_delete_cancels_a_job_that_is_waiting(state: JobState) -> None:
    verdict, cancelled = cancel(record(state), NOW)
    assert verdict == "cancelled"
    assert cancelled is not None
    assert cancelled.state == "cancelled"


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        ("firing", "firing"),
        ("cancelled", "already-cancelled"),
        ("succeeded", "ended"),
        ("failed", "ended"),
    ],
)
def test_a_delete_never_changes_a_job_that_is_firing_or_has_ended(
    state: JobState, verdict: str
) -> None:
    assert cancel(record(state, attempts=1), NOW) == (verdict, None)
