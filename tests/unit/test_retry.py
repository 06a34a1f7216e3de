from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from delivery.prompts.http_call import retry_after_seconds
from scheduling.retry import RetryPolicy, next_attempt_delay

POLICY = RetryPolicy(max_attempts=5, initial_delay_seconds=10, max_delay_seconds=60)
FAILED: dict[str, object] = {"ok": False, "retryable": True}


def delay(attempt: int, outcome: dict[str, object] = FAILED, tx: str = "tx-1") -> float | None:
    wait = next_attempt_delay(POLICY, tx, attempt, outcome)
    return None if wait is None else wait.total_seconds()


def test_no_retry_by_default() -> None:
    assert next_attempt_delay(RetryPolicy(), "tx", 1, FAILED) is None


def test_success_and_permanent_failures_are_final() -> None:
    assert delay(1, {"ok": True, "retryable": True}) is None
    assert delay(1, {"ok": False, "retryable": False}) is None
    assert delay(1, {"ok": False}) is None


def test_backoff_doubles_with_bounded_jitter_and_a_cap() -> None:
    for attempt, base in [(1, 10), (2, 20), (3, 40)]:
        wait = delay(attempt)
        assert wait is not None
        assert base <= wait <= base * 1.1
    assert delay(4) == 60  # 80 s capped at max_delay_seconds


def test_the_last_attempt_is_final() -> None:
    assert delay(4) is not None
    assert delay(5) is None


def test_jitter_is_the_same_on_replay_and_differs_between_jobs() -> None:
    assert delay(1, tx="a") == delay(1, tx="a")
    spreads = {delay(2, tx=f"job-{index}") for index in range(20)}
    assert len(spreads) > 10


def test_retry_after_is_honoured_when_longer_and_capped() -> None:
    assert delay(1, {**FAILED, "retry_after_seconds": 45}) == 45
    assert delay(1, {**FAILED, "retry_after_seconds": 3600}) == 60
    wait = delay(1, {**FAILED, "retry_after_seconds": 1})
    assert wait is not None
    assert wait >= 10


@pytest.mark.parametrize(
    "policy",
    [
        {"max_attempts": 0},
        {"max_attempts": 11},
        {"initial_delay_seconds": 0.5},
        {"initial_delay_seconds": 100, "max_delay_seconds": 50},
        {"backoff": "linear"},
    ],
)
def test_policy_bounds(policy: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy.model_validate(policy)


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Tue, 01 Dec 2026 12:01:30 GMT", 90.0),
        ("Tue, 01 Dec 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_date_is_relative_to_the_clock() -> None:
    later = NOW + timedelta(seconds=30)
    assert retry_after_seconds("Tue, 01 Dec 2026 12:01:30 GMT", later) == 60.0
