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


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (Recurrence(cron="* * * * * *", timezone="UTC"), "cron"),  # seconds
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
