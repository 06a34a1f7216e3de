"""Fire times against an oracle of our own (tests/support/recurrence_oracle.py): every zone whose
UTC offset changes from 2026-12 to 2029-12, random and targeted crons, all six dst_gap x
dst_fold pairs, start_at / end_at / max_runs edges, and exec_local. Any disagreement fails.

Zones whose changes are identical (same instants, same offsets) behave identically: every run
takes one zone of each group and two of its changes (a gap and a fold); the deep run takes every
zone, every change and more crons:

    SCHEDULER_RECURRENCE_DEEP=1 .venv/bin/python -m pytest \
        tests/unit/test_recurrence_differential.py -q -s

`-s` shows the number of cases compared; SCHEDULER_RECURRENCE_SEED picks other random cases.
"""

import os
import random
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import takewhile
from typing import get_args

import pytest

from scheduling.cron import CronError, check_cron
from scheduling.models import DstFold, DstGap
from scheduling.recurrence import (
    Recurrence,
    RecurrenceError,
    fire_times,
    local_exec_at,
    next_fire_at,
    preview,
    upcoming_run,
)
from tests.support.recurrence_oracle import (
    MINUTE,
    Change,
    NotCron,
    OracleCron,
    ZoneWindow,
    instants_of,
    matched_walls,
    never_matches,
    offset_changes,
    read_cron,
    scan_zone,
)
from tests.support.recurrence_oracle import fire_times as oracle_fire_times

SPAN = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2029, 12, 1, tzinfo=UTC))
DEEP = os.environ.get("SCHEDULER_RECURRENCE_DEEP", "") == "1"
SEED = os.environ.get("SCHEDULER_RECURRENCE_SEED", "2026")
RULES = [(gap, fold) for gap in get_args(DstGap) for fold in get_args(DstFold)]
# The oracle reads the clock from SCAN_MARGIN before the earliest `after` to SCAN_MARGIN after
# the horizon: a fold's two passes are hours apart at most.
BEFORE_CHANGE = timedelta(hours=30)
HORIZON = timedelta(hours=30)
SCAN_MARGIN = timedelta(hours=6)
# Zones with no change in the span, as controls: a quarter-hour offset, and UTC itself.
STEADY_ZONES = ("Asia/Kathmandu", "UTC")
# UTC over a month's end (February's: L, LW, nL, n#k, a day 29-31 that does not come).
STEADY_WINDOW = (datetime(2027, 2, 24, tzinfo=UTC), datetime(2027, 3, 4, tzinfo=UTC))


@cache
def zone_groups() -> dict[tuple[Change, ...], tuple[str, ...]]:
    """Zones with an offset change in SPAN, grouped by identical changes."""
    groups: dict[tuple[Change, ...], list[str]] = {}
    for name in sorted(zoneinfo.available_timezones()):
        changes = offset_changes(zoneinfo.ZoneInfo(name), *SPAN)
        if changes:
            groups.setdefault(changes, []).append(name)
    return {changes: tuple(names) for changes, names in groups.items()}


def zones_to_check() -> list[str]:
    groups = zone_groups().values()
    changing = [name for names in groups for name in (names if DEEP else names[:1])]
    return sorted(changing) + list(STEADY_ZONES)


@dataclass
class Tally:
    cases: int = 0
    zones: int = 0
    windows: int = 0


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    counted = Tally()
    yield counted
    print(
        f"\nrecurrence differential ({'deep' if DEEP else 'every run'}, seed {SEED}): "
        f"{counted.cases} cases in {counted.windows} windows of {counted.zones} zones"
    )


def test_the_zones_with_changes_are_found() -> None:
    # Without this the differential could compare nothing and pass.
    groups = zone_groups()
    changing = {name for names in groups.values() for name in names}
    assert {"Europe/London", "Australia/Lord_Howe", "Antarctica/Troll"} <= changing
    assert "Asia/Kathmandu" not in changing
    assert len(groups) >= 20
    assert all(len(changes) >= 1 for changes in groups)


@pytest.mark.parametrize("zone_name", zones_to_check())
def test_fire_times_agree_with_the_oracle(zone_name: str, tally: Tally) -> None:
    rng = random.Random(f"{SEED}:{zone_name}")
    zone = zoneinfo.ZoneInfo(zone_name)
    changes = offset_changes(zone, *SPAN)
    if not changes:
        moment = SPAN[0] + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        picked = [Change(moment, timedelta(0), timedelta(0))]
    elif DEEP:
        picked = list(changes)
    else:
        forward = [change for change in changes if change.after > change.before]
        back = [change for change in changes if change.after < change.before]
        picked = [rng.choice(group) for group in (forward, back) if group]
    tally.zones += 1
    failures: list[str] = []
    for change in picked:
        window = scan_zone(
            zone,
            change.at - BEFORE_CHANGE - SCAN_MARGIN,
            change.at + HORIZON + SCAN_MARGIN,
        )
        tally.windows += 1
        crons = targeted_crons(window, rng)
        crons += [random_cron(rng, window) for _ in range(12 if DEEP else 3)]
        for text in crons:
            matched = matched_walls(window, read_cron(text))
            for gap, fold in RULES:
                failures += compare_schedule(
                    zone_name, window, change, text, matched, gap, fold, rng
                )
                tally.cases += 1
        for wall in exec_local_walls(window, change, rng):
            for gap in get_args(DstGap):
                for fold in ("first", "last"):
                    failures += compare_exec_local(zone_name, window, wall, gap, fold)
                    tally.cases += 1
    assert not failures, f"{len(failures)} disagreements, the first: " + "\n".join(failures[:5])


def compare_schedule(
    zone_name: str,
    window: ZoneWindow,
    change: Change,
    text: str,
    matched: list[datetime],
    gap: DstGap,
    fold: DstFold,
    rng: random.Random,
) -> list[str]:
    horizon = change.at + HORIZON
    after = _some_instant(rng, change.at - BEFORE_CHANGE, change.at + timedelta(hours=1))
    unbounded = [
        moment
        for moment in oracle_fire_times(window, matched, gap, fold, after, None, None)
        if moment <= horizon
    ]
    if unbounded and rng.random() < 0.5:
        after = rng.choice([after, unbounded[0], rng.choice(unbounded)])  # strictly after it
        unbounded = [moment for moment in unbounded if moment > after]
    start_at = _edge(rng, unbounded, lead=True)
    end_at = _edge(rng, unbounded, lead=False)
    if start_at is not None and end_at is not None and end_at <= start_at:
        end_at = None
    expected = [
        moment
        for moment in oracle_fire_times(window, matched, gap, fold, after, start_at, end_at)
        if moment <= horizon
    ]
    max_runs = rng.choice([None, None, 1, 2, len(expected) or 1, len(expected) + 1])
    schedule = Recurrence(
        cron=text,
        timezone=zone_name,
        dst_gap=gap,
        dst_fold=fold,
        start_at=start_at,
        end_at=end_at,
        max_runs=max_runs,
    )
    where = (
        f"{zone_name} cron={text!r} gap={gap} fold={fold} after={after.isoformat()} "
        f"start_at={start_at} end_at={end_at} max_runs={max_runs}"
    )
    failures = []
    got = list(takewhile(lambda moment: moment <= horizon, fire_times(schedule, after)))
    if got != expected:
        failures.append(f"{where}: fire_times {_difference(got, expected)}")

    ended = end_at is not None and end_at <= horizon
    count = rng.choice([1, 3, 10, 100])
    limit = min(count, max_runs or count)
    previewed = preview(schedule, after, count)
    if len(expected) >= limit or ended:
        wanted = expected[:limit]
        if previewed != wanted:
            failures.append(f"{where}: preview({count}) {_shown(previewed)} != {_shown(wanted)}")
    elif previewed[: len(expected)] != expected or any(
        moment <= horizon for moment in previewed[len(expected) :]
    ):
        failures.append(f"{where}: preview({count}) {_shown(previewed)} vs {_shown(expected)}")

    runs_done = rng.choice([0, 0, max_runs - 1, max_runs]) if max_runs else 0
    has_runs_left = max_runs is None or runs_done < max_runs
    following = next_fire_at(schedule, after, runs_done)
    if not has_runs_left or (not expected and ended):
        if following is not None:
            failures.append(f"{where}: next_fire_at({runs_done}) {following} != None")
    elif expected and following != expected[0]:
        failures.append(f"{where}: next_fire_at({runs_done}) {following} != {expected[0]}")
    elif not expected and following is not None and following <= horizon:
        failures.append(f"{where}: next_fire_at({runs_done}) {following} != none by horizon")

    if expected and rng.random() < 0.5:
        now = rng.choice(expected)  # a run ends right on the next one's time
    else:
        now = _some_instant(rng, after, horizon)
    upcoming = upcoming_run(schedule, after, now, runs_done)
    skipped = len([moment for moment in expected if moment <= now])
    later = [moment for moment in expected if moment > now]
    if upcoming.skipped != skipped:
        failures.append(f"{where}: upcoming_run(now={now}) skipped {upcoming.skipped} != {skipped}")
    if not has_runs_left or (not later and ended):
        if upcoming.at is not None:
            failures.append(f"{where}: upcoming_run(now={now}) at {upcoming.at} != None")
    elif later and upcoming.at != later[0]:
        failures.append(f"{where}: upcoming_run(now={now}) at {upcoming.at} != {later[0]}")
    return failures


def compare_exec_local(
    zone_name: str, window: ZoneWindow, wall: datetime, gap: DstGap, fold: str
) -> list[str]:
    expected = instants_of(window, wall, gap, fold)
    where = f"{zone_name} exec_local={wall.isoformat()} gap={gap} fold={fold}"
    try:
        got = [local_exec_at(wall, zone_name, gap, "first" if fold == "first" else "last")]
    except RecurrenceError as error:
        if error.field != "exec_local":
            return [f"{where}: refused naming {error.field}"]
        got = []
    return [] if got == expected else [f"{where}: {_shown(got)} != oracle {_shown(expected)}"]


def _some_instant(rng: random.Random, low: datetime, high: datetime) -> datetime:
    """A minute in [low, high), sometimes with seconds and microseconds."""
    minutes = max(1, int((high - low) / MINUTE))
    moment = low.replace(second=0, microsecond=0) + MINUTE * rng.randrange(minutes)
    if rng.random() < 0.3:
        moment += timedelta(seconds=rng.randrange(60), microseconds=rng.randrange(1_000_000))
    return moment


def _edge(rng: random.Random, instants: list[datetime], lead: bool) -> datetime | None:
    """start_at (lead) or end_at: none, on a fire instant (both inclusive), or just past one."""
    if not instants or rng.random() < 0.5:
        return None
    moment = rng.choice(instants)
    nudge = rng.choice([timedelta(0), timedelta(microseconds=1), MINUTE])
    return moment + nudge if lead else moment - nudge


def _shown(moments: list[datetime]) -> str:
    return (
        "["
        + ", ".join(_instant(moment) for moment in moments[:12])
        + (f", ... ({len(moments)})]" if len(moments) > 12 else "]")
    )


def _difference(got: list[datetime], wanted: list[datetime]) -> str:
    """Where two lists of instants part, and a few around it."""
    index = next(
        (i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b),
        min(len(got), len(wanted)),
    )
    low = max(0, index - 2)
    return (
        f"from #{index}: got {_shown(got[low : index + 3])} "
        f"(of {len(got)}), oracle {_shown(wanted[low : index + 3])} (of {len(wanted)})"
    )


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000", "")


# -- the crons ---------------------------------------------------------------------------------


def targeted_crons(window: ZoneWindow, rng: random.Random) -> list[str]:
    """Crons aimed at the change: times inside, at the edges of and next to its gap or fold,
    several wall times in one fold, one-value ranges, steps, and both day fields."""
    crons = ["0 * * * *", "30 * * * *", "*/15 * * * *", "@hourly", "@daily", "*/10 * * * *"]
    for run in window.gaps() + window.folds():
        first, last = run[0], run[-1]
        inside = rng.choice(run)
        day = inside.date()
        weekday = (day.weekday() + 1) % 7
        crons += [
            f"{inside.minute} {inside.hour} * * *",
            f"{first.minute} {first.hour} * * *",
            f"{last.minute} {last.hour} * * *",
            _at(last + MINUTE),
            _at(first - MINUTE),
            f"{inside.minute}-{inside.minute} {inside.hour}-{inside.hour} {day.day}-{day.day} * *",
            f"{inside.minute} {inside.hour} {day.day} {day.month} *",
            f"* {inside.hour} * * *",
            f"{inside.minute} {inside.hour} */2 * {weekday}",
            f"{inside.minute} {inside.hour} {day.day} * {(weekday + 1) % 7}",
            f"{inside.minute} {inside.hour} * * {weekday}#{(day.day - 1) // 7 + 1}",
            f"{inside.minute} {first.hour}-{last.hour} * * *",
        ]
        two = sorted({rng.choice(run).minute for _ in range(3)})
        if all(wall.hour == first.hour for wall in run):
            crons.append(f"{','.join(map(str, two))} {first.hour} * * *")
        crons.append(f"*/5 {first.hour},{last.hour} * * *")
    if DEEP:
        return crons
    return rng.sample(crons, min(len(crons), 12))


def _at(wall: datetime) -> str:
    return f"{wall.minute} {wall.hour} * * *"


def random_cron(rng: random.Random, window: ZoneWindow) -> str:
    """A random expression of the documented grammar, in random case and spacing; its hours
    lean towards the change's wall clock so that it fires there."""
    middle = window.first_wall + (window.last_wall - window.first_wall) / 2
    hours = [(middle + timedelta(hours=offset)).hour for offset in range(-3, 4)]
    fields = [
        _field(rng, 0, 59, [rng.randrange(60) for _ in range(3)], names=()),
        _field(rng, 0, 23, hours, names=()),
        _day_of_month(rng, middle.day),
        _field(rng, 1, 12, [middle.month], names=_MONTHS) if rng.random() < 0.3 else "*",
        _day_of_week(rng, (middle.weekday() + 1) % 7),
    ]
    if rng.random() < 0.05:
        return rng.choice(["@hourly", "@daily", "@Midnight", "@weekly", "@monthly", "@yearly"])
    spaced = "".join(field + rng.choice([" ", "  ", "\t"]) for field in fields).strip()
    return spaced.lower() if rng.random() < 0.2 else spaced


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def _field(rng: random.Random, low: int, high: int, near: list[int], names: tuple[str, ...]) -> str:
    items = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        value = rng.choice(near)
        other = rng.randrange(value, high + 1)
        step = rng.choice([1, 2, 3, 5, 7, 15])
        item = rng.choice(
            [
                "*",
                f"*/{step}",
                str(value),
                f"{value}-{other}",
                f"{value}-{value}",
                f"{value}/{step}",
                f"{min(value, other)}-{max(value, other) + 1}/{step}"
                if max(value, other) < high
                else str(value),
            ]
        )
        if names and rng.random() < 0.3 and item.isdigit():
            item = names[int(item) - low]
        items.append(item)
    return ",".join(items)


def _day_of_month(rng: random.Random, day: int) -> str:
    if rng.random() < 0.5:
        return "*"
    return rng.choice(
        [_field(rng, 1, 31, [day, max(1, day - 1), min(31, day + 1)], ()), "L", "LW", f"{day},L"]
    )


def _day_of_week(rng: random.Random, weekday: int) -> str:
    if rng.random() < 0.5:
        return "*"
    return rng.choice(
        [
            _field(rng, 0, 7, [weekday, (weekday + 1) % 7], (*_DAYS, "SUN")),
            "MON-FRI",
            f"{weekday}L",
            f"{_DAYS[weekday]}#{rng.randrange(1, 6)}",
            "*/2",
            f"{weekday},{(weekday + 3) % 7}",
        ]
    )


def exec_local_walls(window: ZoneWindow, change: Change, rng: random.Random) -> list[datetime]:
    """Wall times at the edges of and inside the change's gap or fold, with seconds."""
    walls = []
    for run in window.gaps() + window.folds():
        walls += [
            run[0],
            run[-1] + timedelta(seconds=59, microseconds=999_999),
            run[-1] + MINUTE,
            run[0] - timedelta(microseconds=1),
            rng.choice(run) + timedelta(seconds=rng.randrange(60)),
            rng.choice(run) + timedelta(seconds=30),
        ]
    local = change.at.astimezone(window.zone).replace(tzinfo=None, second=0, microsecond=0)
    walls.append(local + timedelta(hours=rng.randrange(-12, 12), seconds=rng.randrange(60)))
    return walls


# -- which expressions are taken ------------------------------------------------------------


def test_the_api_takes_exactly_the_expressions_the_oracle_reads() -> None:
    """Expressions of the grammar, mutated with pieces of cron's alphabet and of others' (H, ?,
    W, seconds): the API takes one iff the oracle reads it, except an expression that could
    never fire, which the API may refuse."""
    rng = random.Random(f"{SEED}:grammar")
    window = scan_zone(zoneinfo.ZoneInfo("UTC"), *STEADY_WINDOW)
    taken = refused = 0
    disagreements = []
    texts = 20_000 if DEEP else 4_000
    for _ in range(texts):
        text = random_cron(rng, window)
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            text = _mutated(rng, text)
        api_takes = _api_takes(text)
        taken += api_takes
        refused += not api_takes
        if disagreement := _disagreement(text):
            disagreements.append(disagreement)
    assert not disagreements, "\n".join(disagreements[:10])
    # Both answers must be common, or the question was not asked.
    assert taken > texts / 5
    assert refused > texts / 5


# Items of every form, in range and out, in and out of the grammar, for every field.
_ITEMS = (
    "*", "*/0", "*/1", "*/7", "*/61", "0", "1", "5", "7", "8", "12", "13", "23", "24", "31",
    "32", "59", "60", "05", "5-5", "5-5/2", "5-4", "5-7", "5-7/2", "5/2", "0/15", "L", "LW",
    "L/2", "LW/2", "L-5", "5L", "0L", "7L", "8L", "L5", "FRIL", "MON#2", "1#5", "1#6", "1#0",
    "7#1", "MON#2/2", "15W", "W", "?", "H", "H/5", "H(0-29)", "JAN", "jan", "DEC-JAN", "JAN-MAR",
    "JAN/3", "MON", "mon", "MON-FRI", "FRI-MON", "SUN-SAT/2", "MON-MON/2", "1-MON/2", "0-7",
    "1-7/3", "*-5", "**", "5-", "-5", "5,", ",5", "", "+5", "5.0", "\u0665",
)  # fmt: skip


@pytest.mark.parametrize("field", range(5))
def test_every_item_form_is_taken_by_the_api_iff_by_the_oracle(field: int) -> None:
    """Each item form alone and in a list with each other, in each field: taken by the API iff
    the oracle reads it (an expression that could never fire may be refused)."""
    disagreements = []
    taken = 0
    others = ["0", "0", "*", "*", "*"]
    window = scan_zone(zoneinfo.ZoneInfo("UTC"), *STEADY_WINDOW)
    after, horizon = STEADY_WINDOW[0] + timedelta(hours=6), STEADY_WINDOW[1] - timedelta(hours=6)
    for first in _ITEMS:
        for second in (None, *_ITEMS):
            item = first if second is None else f"{first},{second}"
            text = " ".join([*others[:field], item, *others[field + 1 :]])
            if disagreement := _disagreement(text):
                disagreements.append(disagreement)
            elif second is None and _api_takes(text):
                # Each form alone is also fired: read the same way by both.
                taken += 1
                matched = matched_walls(window, read_cron(text))
                expected = oracle_fire_times(window, matched, "shift", "first", after, None, None)
                expected = [moment for moment in expected if moment <= horizon]
                schedule = Recurrence(cron=text)
                got = list(takewhile(lambda m: m <= horizon, fire_times(schedule, after)))
                if got != expected:
                    disagreements.append(f"{text!r} fires {_difference(got, expected)}")
    assert not disagreements, f"{len(disagreements)}: " + "\n".join(disagreements[:10])
    assert taken > 10


def _api_takes(text: str) -> bool:
    try:
        check_cron(text)
    except CronError:
        return False
    return True


def _disagreement(text: str) -> str | None:
    try:
        oracle: OracleCron | None = read_cron(text)
    except NotCron:
        oracle = None
    api_takes = _api_takes(text)
    if api_takes and oracle is None:
        return f"the API takes {text!r}, the oracle does not"
    if not api_takes and oracle is not None and not never_matches(oracle):
        return f"the API refuses {text!r}, which the oracle reads"
    return None


_PIECES = (
    "*", "*/", "-", ",", "/", "L", "LW", "W", "#", "?", "H", "H/", "MON", "fri", "JAN", "dec",
    "SUN", "0", "1", "5", "7", "8", "12", "13", "15", "23", "24", "29", "30", "31", "32", "59",
    "60", "00", "2", "3", " ", "@daily", "@reboot",
)  # fmt: skip


def _mutated(rng: random.Random, text: str) -> str:
    """`text` with a piece inserted or replacing a character, a character dropped, or a field
    more or less."""
    at = rng.randrange(len(text) + 1)
    piece = rng.choice(_PIECES)
    return rng.choice(
        [
            text[:at] + piece + text[at:],
            text[:at] + piece + text[at + 1 :],
            text[:at] + text[at + 1 :],
            text + " " + piece,
            " ".join(text.split()[1:]),
        ]
    )


def test_a_random_expression_fires_in_utc_where_the_oracle_says() -> None:
    """Random expressions of the grammar (lists, ranges, steps, names, L, LW, nL, n#k, both day
    fields) over the end of February and a month's last days, in UTC."""
    rng = random.Random(f"{SEED}:utc")
    window = scan_zone(zoneinfo.ZoneInfo("UTC"), *STEADY_WINDOW)
    after = datetime(2027, 2, 27, tzinfo=UTC)
    horizon = datetime(2027, 3, 2, 18, tzinfo=UTC)
    fired = 0
    for _ in range(400 if DEEP else 100):
        text = random_cron(rng, window)
        matched = matched_walls(window, read_cron(text))
        expected = [
            moment
            for moment in oracle_fire_times(window, matched, "shift", "first", after, None, None)
            if moment <= horizon
        ]
        got = list(takewhile(lambda m: m <= horizon, fire_times(Recurrence(cron=text), after)))
        assert got == expected, f"{text!r}: {_difference(got, expected)}"
        fired += bool(expected)
    assert fired > 20
