"""`delay`'s grammar: what it takes, what it refuses and why, against isodate as an oracle."""

from datetime import timedelta

import hypothesis
import isodate
import pytest
from hypothesis import strategies as st

from scheduling.delays import MAX_DELAY, MAX_DELAY_LENGTH, DelayError, format_delay, parse_delay


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("36h", timedelta(days=1, hours=12)),
        ("PT5M", timedelta(minutes=5)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P3D", timedelta(days=3)),
        ("PT90S", timedelta(seconds=90)),
        ("PT1H30M10S", timedelta(hours=1, minutes=30, seconds=10)),
        ("0s", timedelta(0)),
    ],
)
def test_the_short_and_iso_forms_are_read(text: str, expected: timedelta) -> None:
    assert parse_delay(text) == expected


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("P1M", "years or months"),
        ("P1Y2D", "years or months"),
        ("1mo", "years or months"),
        ("1y", "years or months"),
        ("P2W", "weeks"),
        ("2w", "weeks"),
        ("1.5h", "fraction"),
        ("PT0.5S", "fraction"),
        ("5M", "case"),
        ("pt5m", "case"),
        ("1H30M", "case"),
        ("", "not a duration"),
        ("P", "not a duration"),
        ("PT", "not a duration"),
        ("P1DT", "not a duration"),
        ("T5M", "not a duration"),
        ("1m1h", "not a duration"),  # largest unit first
        ("1h1h", "not a duration"),
        ("-5m", "not a duration"),
        (" 5m", "not a duration"),
        ("5m ", "not a duration"),
        ("5", "not a duration"),
        ("5 minutes", "not a duration"),
        ("1000000000s", "not a duration"),  # ten digits
        ("99999999d", f"longer than {MAX_DELAY.days} days"),
        (90, "must be a string"),
        (None, "must be a string"),
        (["5m"], "must be a string"),
    ],
)
def test_anything_else_is_refused_saying_why(value: object, said: str) -> None:
    with pytest.raises(DelayError) as raised:
        parse_delay(value)
    assert said in str(raised.value)


def test_a_long_value_is_refused_unread_and_not_echoed() -> None:
    value = "1" * 1_000_000 + "s"
    with pytest.raises(DelayError) as raised:
        parse_delay(value)
    assert f"at most {MAX_DELAY_LENGTH} characters" in str(raised.value)
    assert "1111" not in str(raised.value)


@pytest.mark.parametrize(
    ("delay", "written"),
    [
        (timedelta(seconds=90), "1m30s"),
        (timedelta(days=1, hours=2), "1d2h"),
        (timedelta(days=2), "2d"),
        (timedelta(0), "0s"),
    ],
)
def test_one_duration_has_one_written_form(delay: timedelta, written: str) -> None:
    assert format_delay(delay) == written


# Within MAX_DELAY together (the cap has its own test above).
_COUNT = st.none() | st.integers(min_value=0, max_value=99_999)
_DAYS = st.none() | st.integers(min_value=0, max_value=9_999)


@hypothesis.given(days=_DAYS, hours=_COUNT, minutes=_COUNT, seconds=_COUNT)
def test_iso_durations_read_as_isodate_reads_them(
    days: int | None, hours: int | None, minutes: int | None, seconds: int | None
) -> None:
    time = "".join(
        f"{count}{unit}" for count, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if count
    )
    text = "P" + (f"{days}D" if days is not None else "") + (f"T{time}" if time else "")
    hypothesis.assume(text != "P")
    assert parse_delay(text) == isodate.parse_duration(text)
    # The short form of the same counts is the same duration, and one written form each.
    short = "".join(
        f"{count}{unit}"
        for count, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
        if count is not None
    )
    assert parse_delay(short) == parse_delay(text)
    assert parse_delay(format_delay(parse_delay(text))) == parse_delay(text)
