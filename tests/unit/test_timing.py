from datetime import UTC, datetime, timedelta

import pytest

from scheduling.timing import (
    MAX_TIMER_CHUNK,
    ExecAtError,
    check_schedule_window,
    format_utc,
    next_wait,
    parse_exec_at,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T10:00:00+05:45", datetime(2026, 12, 1, 4, 15, tzinfo=UTC)),
        ("2026-12-01T10:00:00-03:30", datetime(2026, 12, 1, 13, 30, tzinfo=UTC)),
        ("2026-12-01T10:00:00.250Z", datetime(2026, 12, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        # More than microsecond precision is cut, not refused.
        ("2026-12-01T10:00:00.123456789Z", datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2028-02-29T23:30:00-01:00", datetime(2028, 3, 1, 0, 30, tzinfo=UTC)),
        # RFC 3339 lets T and Z be lower case.
        ("2026-12-01t10:00:00z", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T10:00:00.5z", datetime(2026, 12, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-12-01T10:00:00-00:00", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
        ("2026-12-01T10:00:00+23:59", datetime(2026, 11, 30, 10, 1, tzinfo=UTC)),
    ],
)
def test_parse_exec_at_normalises_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_exec_at(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("2026-12-01T10:00:00", "offset"),
        ("2026-12-01T10:00:00.5", "offset"),
        ("2026-12-01", "format"),
        ("2027-02-29T10:00:00Z", "format"),
        ("2026-13-01T10:00:00Z", "format"),
        ("2026-12-01T24:00:00Z", "format"),
        ("next tuesday", "format"),
        ("", "format"),
        (1764158400, "format"),
        (None, "format"),
    ],
)
def test_parse_exec_at_refuses(value: object, rule: str) -> None:
    with pytest.raises(ExecAtError) as raised:
        parse_exec_at(value)
    assert raised.value.rule == rule


# Accepted by datetime.fromisoformat (or by the old strip()), but not RFC 3339 date-times.
NOT_RFC3339 = [
    pytest.param("2026-12-01T10:00:00Z\x00", id="trailing-nul"),
    pytest.param("2026-12-01T10:00:00Z\n", id="trailing-newline"),
    pytest.param("2026-12-01T10:00:00Zjunk", id="trailing-text"),
    pytest.param(" 2026-12-01T10:00:00Z", id="leading-space"),
    pytest.param("2026-12-01T10:00:00Z ", id="trailing-space"),
    pytest.param("2026-12-01T10:00:00.Z", id="dot-without-digits"),
    pytest.param("2026-12-01T10:00:00,5Z", id="comma-fraction"),
    pytest.param("2026-12-01T10:00:00+01:00:00", id="offset-with-seconds"),
    pytest.param("2026-12-01T10:00:00+01:00:00.5", id="offset-with-fraction"),
    pytest.param("2026-12-01T10:00:00+0100", id="offset-without-colon"),
    pytest.param("2026-12-01T10:00:00+01", id="offset-hours-only"),
    pytest.param("2026-12-01T10:00:00+01:60", id="offset-minute-60"),
    pytest.param("2026-12-01T10:00:00+24:00", id="offset-hour-24"),
    pytest.param("2026-W49-2T10:00:00Z", id="week-date"),
    pytest.param("2026-335T10:00:00Z", id="ordinal-date"),
    pytest.param("20261201T100000Z", id="basic-format"),
    pytest.param("2026-12-01T10:00Z", id="no-seconds"),
    pytest.param("2026-12-01T10Z", id="hour-only"),
    pytest.param("2026-12-01 10:00:00Z", id="space-separator"),
    pytest.param("2026-12-01_10:00:00Z", id="other-separator"),
    pytest.param("2026-12-01T10:00:60Z", id="leap-second"),
    pytest.param("+2026-12-01T10:00:00Z", id="signed-year"),
    pytest.param("\uff12\uff10\uff12\uff16-12-01T10:00:00Z", id="fullwidth-digits"),
    pytest.param("2026-12-01T10:00:00." + "1" * 100 + "Z", id="over-long"),
]


@pytest.mark.parametrize("text", NOT_RFC3339)
def test_parse_exec_at_accepts_only_rfc3339(text: str) -> None:
    with pytest.raises(ExecAtError) as raised:
        parse_exec_at(text)
    assert raised.value.rule == "format"
    assert len(str(raised.value)) < 200


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_parse_exec_at_refuses_a_time_out_of_range_in_utc(text: str) -> None:
    # Valid as written, but converting to UTC leaves datetime's years 1-9999.
    with pytest.raises(ExecAtError, match="out of range") as raised:
        parse_exec_at(text)
    assert raised.value.rule == "format"


def test_parse_exec_at_accepts_the_extremes_that_stay_in_range() -> None:
    assert parse_exec_at("0001-01-01T00:00:00-01:00") == datetime(1, 1, 1, 1, tzinfo=UTC)
    assert parse_exec_at("9999-12-31T23:30:00+01:00") == datetime(9999, 12, 31, 22, 30, tzinfo=UTC)


def test_lead_boundary_is_inclusive() -> None:
    check_schedule_window(
        NOW + timedelta(seconds=60), NOW, min_lead_seconds=60, max_horizon_days=366
    )
    with pytest.raises(ExecAtError) as raised:
        check_schedule_window(
            NOW + timedelta(seconds=59, microseconds=999999),
            NOW,
            min_lead_seconds=60,
            max_horizon_days=366,
        )
    assert raised.value.rule == "min_lead"
    assert "at least 60 s" in str(raised.value)


def test_horizon_boundary_is_inclusive() -> None:
    check_schedule_window(NOW + timedelta(days=366), NOW, min_lead_seconds=60, max_horizon_days=366)
    with pytest.raises(ExecAtError) as raised:
        check_schedule_window(
            NOW + timedelta(days=366, seconds=1), NOW, min_lead_seconds=60, max_horizon_days=366
        )
    assert raised.value.rule == "max_horizon"
    assert "at most 366 days" in str(raised.value)


def test_past_time_is_too_soon() -> None:
    with pytest.raises(ExecAtError, match="at least"):
        check_schedule_window(NOW - timedelta(days=1), NOW, min_lead_seconds=0, max_horizon_days=1)


def test_next_wait_is_none_when_due() -> None:
    assert next_wait(NOW, NOW) is None
    assert next_wait(NOW, NOW - timedelta(seconds=1)) is None


def test_next_wait_reaches_a_near_exec_at() -> None:
    step = next_wait(NOW, NOW + timedelta(hours=5))
    assert step is not None
    assert step.until == NOW + timedelta(hours=5)
    assert step.reaches_exec_at


def test_next_wait_chunks_a_far_exec_at() -> None:
    exec_at = NOW + timedelta(days=300)
    now, waits = NOW, 0
    while (step := next_wait(now, exec_at)) is not None:
        assert step.until - now <= MAX_TIMER_CHUNK
        now, waits = step.until, waits + 1
    assert now == exec_at
    assert waits == 100


def test_format_utc_uses_z() -> None:
    assert format_utc(parse_exec_at("2026-12-01T10:00:00+01:00")) == "2026-12-01T09:00:00Z"
