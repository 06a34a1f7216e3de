"""What the dashboard's tables flag of a live job: overdue past a minute, and for how long."""

from datetime import timedelta

import pytest

from dashboard.jobs import OVERDUE_AFTER, format_duration, overdue
from scheduling.flow_control import FlowLimits
from tests.support.job_records import DUE
from tests.support.job_records import job_record as record


def test_a_pending_job_is_overdue_only_past_the_threshold() -> None:
    assert overdue(record(), DUE + OVERDUE_AFTER) is None
    late = overdue(record(), DUE + OVERDUE_AFTER + timedelta(seconds=1))
    assert late is not None
    assert late.by == OVERDUE_AFTER + timedelta(seconds=1)
    assert late.flow_key is None
    assert overdue(record(), DUE - timedelta(hours=1)) is None


def test_a_retrying_job_is_late_from_its_retry_time_not_its_run_time() -> None:
    retry_at = DUE + timedelta(minutes=5)
    retrying = record(state="retrying", attempts=1, next_attempt_at=retry_at)
    assert overdue(retrying, retry_at + timedelta(seconds=30)) is None
    late = overdue(retrying, retry_at + timedelta(minutes=2))
    assert late is not None
    assert late.by == timedelta(minutes=2)


@pytest.mark.parametrize("state", ["firing", "paused", "succeeded", "failed", "cancelled"])
def test_a_job_with_no_attempt_waiting_is_never_overdue(state: str) -> None:
    assert overdue(record(state=state), DUE + timedelta(days=2)) is None


def test_a_flow_controlled_job_says_which_key_may_hold_it() -> None:
    flow = FlowLimits(key="hooks.example.com", max_parallel=2, rate_per_second=1)
    late = overdue(record(flow=flow), DUE + timedelta(minutes=3))
    assert late is not None
    assert late.flow_key == "hooks.example.com"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (0.9, "0 s"),
        (45, "45 s"),
        (60, "1 min"),
        (200, "3 min 20 s"),
        (3600 + 5 * 60 + 7, "1 h 5 min"),
        (2 * 86_400 + 7, "2 d"),
        (3 * 86_400 + 4 * 3600 + 59, "3 d 4 h"),
        (-5, "0 s"),
    ],
)
def test_durations_in_their_two_largest_units(seconds: float, shown: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == shown
