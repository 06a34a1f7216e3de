"""Fire times of cron schedules in IANA zones, across both DST changes, under every rule."""

from datetime import UTC, datetime, timedelta

import pytest

from scheduling.models import DstFold, DstGap
from scheduling.recurrence import (
    Recurrence,
    RecurrenceError,
    check_recurrence,
    local_exec_at,
    next_fire_at,
    preview,
    wall_to_utc,
    zone_of,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def daily(at: str, zone: str, dst_gap: DstGap = "shift", dst_fold: DstFold = "first") -> Recurrence:
    hour, minute = (int(part) for part in at.split(":"))
    return Recurrence(
        cron=f"{minute} {hour} * * *", timezone=zone, dst_gap=dst_gap, dst_fold=dst_fold
    )


# -- gaps: the wall time does not exist -------------------------------------------------------


def test_london_gap_shift_fires_once_at_the_first_valid_instant() -> None:
    # 2027-03-28: 01:00 GMT jumps to 02:00 BST; 01:30 does not exist.
    runs = preview(daily("01:30", "Europe/London"), utc(2027, 3, 26, 12), 3)
    assert runs == [utc(2027, 3, 27, 1, 30), utc(2027, 3, 28, 1, 0), utc(2027, 3, 29, 0, 30)]


def test_london_gap_skip_leaves_the_day_out() -> None:
    runs = preview(daily("01:30", "Europe/London", dst_gap="skip"), utc(2027, 3, 26, 12), 2)
    assert runs == [utc(2027, 3, 27, 1, 30), utc(2027, 3, 29, 0, 30)]


def test_new_york_gap() -> None:
    # 2027-03-14: 02:00 EST jumps to 03:00 EDT.
    shift = preview(daily("02:30", "America/New_York"), utc(2027, 3, 13, 12), 2)
    assert shift == [utc(2027, 3, 14, 7, 0), utc(2027, 3, 15, 6, 30)]
    skip = preview(daily("02:30", "America/New_York", dst_gap="skip"), utc(2027, 3, 13, 12), 1)
    assert skip == [utc(2027, 3, 15, 6, 30)]


def test_lord_howe_half_hour_gap() -> None:
    # 2027-10-03: Lord Howe goes from +10:30 to +11:00 at 02:00, to 02:30.
    schedule = daily("02:15", "Australia/Lord_Howe")
    runs = preview(schedule, utc(2027, 10, 1, 12), 3)
    assert runs[1] == utc(2027, 10, 2, 15, 30)  # 02:30 +11:00, the first valid instant
    assert runs[0] == utc(2027, 10, 1, 15, 45)  # 02:15 +10:30
    assert runs[2] == utc(2027, 10, 3, 15, 15)  # 02:15 +11:00


# -- folds: the wall time happens twice -------------------------------------------------------


@pytest.mark.parametrize(
    ("fold", "expected"),
    [
        ("first", [utc(2027, 10, 31, 0, 30)]),
        ("last", [utc(2027, 10, 31, 1, 30)]),
        ("both", [utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 1, 30)]),
    ],
)
def test_london_fold(fold: DstFold, expected: list[datetime]) -> None:
    # 2027-10-31: 02:00 BST falls back to 01:00 GMT; 01:30 happens twice.
    runs = preview(daily("01:30", "Europe/London", dst_fold=fold), utc(2027, 10, 30, 12), 3)
    assert runs[: len(expected)] == expected
    assert runs[len(expected)] == utc(2027, 11, 1, 1, 30)


def test_new_york_fold_last() -> None:
    # 2027-11-07: 02:00 EDT falls back to 01:00 EST.
    runs = preview(daily("01:15", "America/New_York", dst_fold="last"), utc(2027, 11, 6, 12), 2)
    assert runs == [utc(2027, 11, 7, 6, 15), utc(2027, 11, 8, 6, 15)]


def test_lord_howe_half_hour_fold_both() -> None:
    # 2027-04-04: Lord Howe goes from +11:00 back to +10:30 at 02:00: 01:30-02:00 twice.
    schedule = daily("01:45", "Australia/Lord_Howe", dst_fold="both")
    runs = preview(schedule, utc(2027, 4, 2, 12), 4)
    assert runs[1:3] == [utc(2027, 4, 3, 14, 45), utc(2027, 4, 3, 15, 15)]


def test_kathmandu_has_no_dst_and_a_quarter_hour_offset() -> None:
    runs = preview(daily("09:00", "Asia/Kathmandu"), utc(2027, 3, 27, 12), 2)
    assert runs == [utc(2027, 3, 28, 3, 15), utc(2027, 3, 29, 3, 15)]


# -- leap days, limits ------------------------------------------------------------------------


def test_a_leap_day_schedule_fires_only_on_leap_days() -> None:
    runs = preview(Recurrence(cron="0 12 29 2 *", timezone="UTC"), utc(2026, 12, 1), 2)
    assert runs == [utc(2028, 2, 29, 12), utc(2032, 2, 29, 12)]


def test_end_at_is_inclusive_and_stops_the_schedule() -> None:
    schedule = Recurrence(cron="0 * * * *", timezone="UTC", end_at=utc(2027, 1, 1, 3))
    assert preview(schedule, utc(2027, 1, 1), 10) == [
        utc(2027, 1, 1, 1),
        utc(2027, 1, 1, 2),
        utc(2027, 1, 1, 3),
    ]
    assert next_fire_at(schedule, utc(2027, 1, 1, 3)) is None


def test_start_at_is_inclusive() -> None:
    schedule = Recurrence(cron="0 * * * *", timezone="UTC", start_at=utc(2027, 1, 1, 5))
    assert preview(schedule, utc(2027, 1, 1), 2) == [utc(2027, 1, 1, 5), utc(2027, 1, 1, 6)]


def test_max_runs_counts_runs_done() -> None:
    schedule = Recurrence(cron="@hourly", timezone="UTC", max_runs=2)
    assert len(preview(schedule, utc(2027, 1, 1), 10)) == 2
    assert next_fire_at(schedule, utc(2027, 1, 1), runs_done=1) == utc(2027, 1, 1, 1)
    assert next_fire_at(schedule, utc(2027, 1, 1), runs_done=2) is None


def test_aliases_are_five_fields() -> None:
    assert preview(Recurrence(cron="@daily", timezone="Europe/Paris"), utc(2027, 7, 1), 1) == [
        utc(2027, 7, 1, 22)
    ]


# -- the reproductions of issue 20 ---------------------------------------------------------------


def test_zone_data_is_the_pinned_tzdata_not_the_hosts() -> None:
    # British Columbia stays on UTC-7 from November 2026 in tzdata 2026f; the host's older data
    # (2025b) falls back to UTC-8 on 2026-11-01, which put the third run at 17:00Z.
    schedule = Recurrence(cron="0 9 * * 1-5", timezone="America/Vancouver")
    assert preview(schedule, utc(2026, 10, 29), 3) == [
        utc(2026, 10, 29, 16),
        utc(2026, 10, 30, 16),
        utc(2026, 11, 2, 16),
    ]


def test_fold_both_fires_every_wall_time_of_the_repeated_hour_twice() -> None:
    # 2027-10-31: 02:00 BST falls back to 01:00 GMT; 01:00 and 01:30 happen twice each.
    schedule = Recurrence(cron="0,30 1 * * *", timezone="Europe/London", dst_fold="both")
    assert preview(schedule, utc(2027, 10, 30, 12), 4) == [
        utc(2027, 10, 31, 0, 0),  # 01:00 BST
        utc(2027, 10, 31, 0, 30),  # 01:30 BST
        utc(2027, 10, 31, 1, 0),  # 01:00 GMT
        utc(2027, 10, 31, 1, 30),  # 01:30 GMT
    ]
    # end_at and max_runs count the same runs, in time order.
    ended = schedule.model_copy(update={"end_at": utc(2027, 10, 31, 1, 0)})
    assert preview(ended, utc(2027, 10, 30, 12), 10) == [
        utc(2027, 10, 31, 0, 0),
        utc(2027, 10, 31, 0, 30),
        utc(2027, 10, 31, 1, 0),
    ]
    limited = schedule.model_copy(update={"max_runs": 2})
    assert preview(limited, utc(2027, 10, 30, 12), 10) == [
        utc(2027, 10, 31, 0, 0),
        utc(2027, 10, 31, 0, 30),
    ]
    assert next_fire_at(limited, utc(2027, 10, 31, 0, 0), runs_done=1) == utc(2027, 10, 31, 0, 30)


def test_fold_both_every_quarter_hour_goes_on_through_the_first_pass() -> None:
    schedule = Recurrence(cron="*/15 * * * *", timezone="Europe/London", dst_fold="both")
    assert preview(schedule, utc(2027, 10, 31, 0, 5), 8) == [
        utc(2027, 10, 31, 0, 15) + timedelta(minutes=15 * step) for step in range(8)
    ]


def test_exec_local_with_seconds_in_a_gap_shifts_to_the_jump_itself() -> None:
    # 01:30:30 does not exist on 2027-03-28 in London: the clocks jumped at 01:00:00 UTC.
    wall = datetime(2027, 3, 28, 1, 30, 30)
    assert local_exec_at(wall, "Europe/London", "shift", "first") == utc(2027, 3, 28, 1, 0)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 5-5 * * *", [utc(2027, 1, 1, 5), utc(2027, 1, 2, 5), utc(2027, 1, 3, 5)]),
        ("0 0 1-1 * *", [utc(2027, 2, 1), utc(2027, 3, 1), utc(2027, 4, 1)]),
        # 2027-01-05 is a Tuesday
        ("0 0 * * 2-2", [utc(2027, 1, 5), utc(2027, 1, 12), utc(2027, 1, 19)]),
        ("0 0 1 3-3 *", [utc(2027, 3, 1), utc(2028, 3, 1), utc(2029, 3, 1)]),
    ],
)
def test_a_one_value_range_is_that_value(cron: str, expected: list[datetime]) -> None:
    assert preview(Recurrence(cron=cron), utc(2027, 1, 1), 3) == expected


@pytest.mark.parametrize(
    ("dst_gap", "expected"),
    [
        ("shift", [utc(2027, 3, 26, 22), utc(2027, 3, 27, 22), utc(2027, 3, 28, 21)]),
        ("skip", [utc(2027, 3, 26, 22), utc(2027, 3, 28, 21), utc(2027, 3, 29, 21)]),
    ],
)
def test_daily_where_the_clocks_jump_over_midnight(
    dst_gap: DstGap, expected: list[datetime]
) -> None:
    # Asia/Beirut, 2027-03-28: 00:00 EET jumps to 01:00 EEST (22:00 UTC the day before).
    schedule = Recurrence(cron="@daily", timezone="Asia/Beirut", dst_gap=dst_gap)
    assert preview(schedule, utc(2027, 3, 26, 12), 3) == expected


# -- the cron grammar (docs/recurring.md) -------------------------------------------------------


def test_day_of_month_and_day_of_week_both_match_when_either_starts_with_a_star() -> None:
    # Odd days of the month that are Mondays (Vixie cron): not every odd day, nor every Monday.
    schedule = Recurrence(cron="0 0 */2 * 1")
    assert preview(schedule, utc(2027, 1, 1), 4) == [
        utc(2027, 1, 11),
        utc(2027, 1, 25),
        utc(2027, 2, 1),
        utc(2027, 2, 15),
    ]


def test_day_of_month_or_day_of_week_when_neither_starts_with_a_star() -> None:
    # The 13th, and every Friday (2027-01-01 is one; the preview starts just after it).
    schedule = Recurrence(cron="0 0 13 * FRI")
    assert preview(schedule, utc(2027, 1, 1), 4) == [
        utc(2027, 1, 8),
        utc(2027, 1, 13),
        utc(2027, 1, 15),
        utc(2027, 1, 22),
    ]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 0 L * *", [utc(2027, 1, 31), utc(2027, 2, 28)]),
        ("0 0 LW * *", [utc(2027, 1, 29), utc(2027, 2, 26)]),  # last Monday to Friday
        ("0 0 * * 5L", [utc(2027, 1, 29), utc(2027, 2, 26)]),  # last Friday
        ("0 0 * * MON#2", [utc(2027, 1, 11), utc(2027, 2, 8)]),  # second Monday
        ("0 0 * JAN,FEB SUN", [utc(2027, 1, 3), utc(2027, 1, 10)]),
        ("0 0 * * 7", [utc(2027, 1, 3), utc(2027, 1, 10)]),  # 7 is Sunday too
        ("0/20 9 * * *", [utc(2027, 1, 1, 9), utc(2027, 1, 1, 9, 20)]),  # 0-59/20
    ],
)
def test_the_documented_extras(cron: str, expected: list[datetime]) -> None:
    assert preview(Recurrence(cron=cron), utc(2027, 1, 1), 2) == expected


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("0 9 * * mon-fri", "0 9 * * MON-FRI"),
        (" 0\t9  *\n* *  ", "0 9 * * *"),
        ("@DAILY", "@daily"),
        ("\t@Hourly ", "@hourly"),
        ("0 0 l * *", "0 0 L * *"),
    ],
)
def test_the_cron_is_stored_normalised(written: str, stored: str) -> None:
    assert Recurrence(cron=written).cron == stored
    assert check_recurrence(Recurrence(cron=written), utc(2027, 1, 1))


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (Recurrence(cron="* * * * * *", timezone="UTC"), "cron"),  # seconds
        (Recurrence(cron="H * * * *", timezone="UTC"), "cron"),  # Jenkins' hash
        (Recurrence(cron="0 0 ? * MON", timezone="UTC"), "cron"),  # Quartz's "no value"
        (Recurrence(cron="0 0 15W * *", timezone="UTC"), "cron"),  # nearest weekday
        (Recurrence(cron="0 0 L/2 * *", timezone="UTC"), "cron"),  # a step after L
        (Recurrence(cron="5-5/10 * * * *", timezone="UTC"), "cron"),  # a step over one value
        (Recurrence(cron="0 0 * * MON#6", timezone="UTC"), "cron"),
        (Recurrence(cron="0 0 * * 8L", timezone="UTC"), "cron"),
        (Recurrence(cron="0 24 * * *", timezone="UTC"), "cron"),
        (Recurrence(cron="0 0 * * FRI-MON", timezone="UTC"), "cron"),
        (Recurrence(cron="0 \u0665 * * *", timezone="UTC"), "cron"),  # not an ASCII digit
        (Recurrence(cron="61 * * * *", timezone="UTC"), "cron"),
        (Recurrence(cron="@reboot", timezone="UTC"), "cron"),
        (Recurrence(cron="x" * 300, timezone="UTC"), "cron"),
        (Recurrence(cron="0 0 31 4 *", timezone="UTC"), "cron"),  # April 31: never
        (Recurrence(cron="0 0 * * *", timezone="Mars/Olympus"), "timezone"),
        (Recurrence(cron="0 0 * * *", timezone="../../etc/passwd"), "timezone"),
        (Recurrence(cron="0 0 * * *", timezone="UTC", end_at=utc(2020, 1, 1)), "cron"),
        (
            Recurrence(
                cron="0 0 * * *",
                timezone="UTC",
                start_at=utc(2027, 2, 1),
                end_at=utc(2027, 1, 1),
            ),
            "end_at",
        ),
    ],
)
def test_a_schedule_that_cannot_work_names_the_field(schedule: Recurrence, field: str) -> None:
    with pytest.raises(RecurrenceError) as raised:
        check_recurrence(schedule, utc(2026, 12, 1))
    assert raised.value.field == field


def test_times_at_the_end_of_the_calendar_are_refused_not_an_error() -> None:
    far = Recurrence(cron="0 0 * * *", start_at=datetime(9999, 12, 31, tzinfo=UTC))
    with pytest.raises(RecurrenceError) as raised:
        check_recurrence(far, utc(2026, 12, 1))
    assert raised.value.field == "cron"
    for wall, zone in [
        (datetime(1, 1, 1), "Asia/Tokyo"),  # +09:18:59 then: before year 1 in UTC
        (datetime(9999, 12, 31, 23, 59), "America/Adak"),  # -10:00: after year 9999
    ]:
        with pytest.raises(RecurrenceError) as raised:
            local_exec_at(wall, zone, "shift", "first")
        assert raised.value.field == "exec_local"


def test_every_minute_is_the_tightest_schedule() -> None:
    first = check_recurrence(Recurrence(cron="* * * * *", timezone="UTC"), utc(2027, 1, 1))
    assert first == utc(2027, 1, 1, 0, 1)


# -- one-time jobs at a local wall time -------------------------------------------------------


def test_exec_local_follows_the_same_rules() -> None:
    wall = datetime(2027, 3, 28, 1, 30)
    assert local_exec_at(wall, "Europe/London", "shift", "first") == utc(2027, 3, 28, 1, 0)
    with pytest.raises(RecurrenceError) as raised:
        local_exec_at(wall, "Europe/London", "skip", "first")
    assert raised.value.field == "exec_local"
    fold = datetime(2027, 10, 31, 1, 30)
    assert local_exec_at(fold, "Europe/London", "shift", "last") == utc(2027, 10, 31, 1, 30)


def test_a_wall_time_outside_any_change_is_one_instant() -> None:
    zone = zone_of("Europe/Paris")
    assert wall_to_utc(datetime(2027, 7, 1, 9), zone, "shift", "both") == [utc(2027, 7, 1, 7)]


# -- the whole matrix: every zone, both changes, every rule -----------------------------------

Z = utc
MATRIX: list[tuple[str, datetime, str, str, list[datetime]]] = [
    # zone, wall time on the change day, gap rule, fold rule, the UTC instants it fires at
    *(
        ("Europe/London", datetime(2027, 3, 28, 1, 30), "shift", fold, [Z(2027, 3, 28, 1)])
        for fold in ("first", "last", "both")
    ),
    *(
        ("Europe/London", datetime(2027, 3, 28, 1, 30), "skip", fold, [])
        for fold in ("first", "last", "both")
    ),
    ("Europe/London", datetime(2027, 10, 31, 1, 30), "shift", "first", [Z(2027, 10, 31, 0, 30)]),
    ("Europe/London", datetime(2027, 10, 31, 1, 30), "skip", "last", [Z(2027, 10, 31, 1, 30)]),
    (
        "Europe/London",
        datetime(2027, 10, 31, 1, 30),
        "shift",
        "both",
        [Z(2027, 10, 31, 0, 30), Z(2027, 10, 31, 1, 30)],
    ),
    ("America/New_York", datetime(2027, 3, 14, 2, 30), "shift", "both", [Z(2027, 3, 14, 7)]),
    ("America/New_York", datetime(2027, 3, 14, 2, 30), "skip", "first", []),
    ("America/New_York", datetime(2027, 11, 7, 1, 30), "shift", "first", [Z(2027, 11, 7, 5, 30)]),
    ("America/New_York", datetime(2027, 11, 7, 1, 30), "skip", "last", [Z(2027, 11, 7, 6, 30)]),
    (
        "America/New_York",
        datetime(2027, 11, 7, 1, 30),
        "skip",
        "both",
        [Z(2027, 11, 7, 5, 30), Z(2027, 11, 7, 6, 30)],
    ),
    (
        "Australia/Lord_Howe",
        datetime(2027, 10, 3, 2, 15),
        "shift",
        "first",
        [Z(2027, 10, 2, 15, 30)],
    ),
    ("Australia/Lord_Howe", datetime(2027, 10, 3, 2, 15), "skip", "both", []),
    ("Australia/Lord_Howe", datetime(2027, 4, 4, 1, 45), "shift", "first", [Z(2027, 4, 3, 14, 45)]),
    ("Australia/Lord_Howe", datetime(2027, 4, 4, 1, 45), "skip", "last", [Z(2027, 4, 3, 15, 15)]),
    (
        "Australia/Lord_Howe",
        datetime(2027, 4, 4, 1, 45),
        "shift",
        "both",
        [Z(2027, 4, 3, 14, 45), Z(2027, 4, 3, 15, 15)],
    ),
    *(
        ("Asia/Kathmandu", datetime(2027, 3, 28, 9, 0), gap, fold, [Z(2027, 3, 28, 3, 15)])
        for gap in ("shift", "skip")
        for fold in ("first", "last", "both")
    ),
]


@pytest.mark.parametrize(("zone", "wall", "gap", "fold", "instants"), MATRIX)
def test_every_zone_change_and_rule(
    zone: str, wall: datetime, gap: DstGap, fold: DstFold, instants: list[datetime]
) -> None:
    assert wall_to_utc(wall, zone_of(zone), gap, fold) == instants
    # The same through a daily schedule: exactly these runs on that local day.
    schedule = Recurrence(
        cron=f"{wall.minute} {wall.hour} * * *", timezone=zone, dst_gap=gap, dst_fold=fold
    )
    runs = preview(
        schedule, datetime(wall.year, wall.month, wall.day, tzinfo=UTC) - timedelta(days=2), 5
    )
    local = zone_of(zone)
    assert [run for run in runs if run.astimezone(local).date() == wall.date()] == instants
