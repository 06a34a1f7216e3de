"""The dashboard's two charts, as numbers and bar geometry: the template only draws them.

Both come from attempts (when each fired, how late), gathered by the caller from a bounded
read of the job store; nothing here reads anything.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DAY_MINUTES = 24 * 60
# The per-minute chart spans the shortest of these that holds the oldest attempt of the day:
# a few minutes of traffic on a new install fill an hour, not a sliver at the end of a day.
WINDOW_HOURS = (1, 2, 3, 6, 12, 24)
# Upper bounds (ms) of the lateness buckets; the last bucket is everything above.
LATENESS_BOUNDS_MS = (100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000)
_QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
WIDTH = 960
HEIGHT = 200


@dataclass(frozen=True)
class FiredAttempt:
    """One attempt: when it fired, and how late (None when its due time is unknown)."""

    fired_at: datetime
    lateness_ms: float | None


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the bar's tooltip: what it counts
    count: int


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    total: int
    peak: int
    width: int = WIDTH
    height: int = HEIGHT


def fitted_minutes(attempts: Iterable[FiredAttempt], now: datetime) -> int | None:
    """How many minutes (ending with now's) the per-minute chart spans: the shortest of
    WINDOW_HOURS that holds the oldest attempt fired in the last day; None when none fired
    in it (the page says so instead of drawing an empty axis)."""
    this_minute = _minute(now)
    oldest = -1
    for attempt in attempts:
        age = int((this_minute - _minute(attempt.fired_at)).total_seconds() // 60)
        if age < DAY_MINUTES:
            oldest = max(oldest, age)
    if oldest < 0:
        return None
    return next(hours * 60 for hours in WINDOW_HOURS if oldest < hours * 60)


def first_minute(now: datetime, minutes: int) -> datetime:
    """The first minute of a window of `minutes` that ends with now's."""
    return _minute(now) - timedelta(minutes=minutes - 1)


def fired_per_minute(
    attempts: Iterable[FiredAttempt], now: datetime, minutes: int = DAY_MINUTES
) -> list[int]:
    """Attempts fired in each of the last `minutes` minutes (now's included), oldest first."""
    start = first_minute(now, minutes)
    counts = [0] * minutes
    for attempt in attempts:
        index = int((attempt.fired_at - start).total_seconds() // 60)
        if 0 <= index < minutes:
            counts[index] += 1
    return counts


def lateness_histogram(attempts: Iterable[FiredAttempt]) -> list[int]:
    """How many attempts fell in each lateness bucket (early counts as on time)."""
    counts = [0] * (len(LATENESS_BOUNDS_MS) + 1)
    for attempt in attempts:
        if attempt.lateness_ms is None:
            continue
        late = max(attempt.lateness_ms, 0.0)
        counts[next((i for i, b in enumerate(LATENESS_BOUNDS_MS) if late < b), -1)] += 1
    return counts


def percentiles(attempts: Iterable[FiredAttempt]) -> dict[str, float]:
    """p50, p95, p99 and the maximum of the known lateness values (nearest rank); {} if none."""
    values = sorted(a.lateness_ms for a in attempts if a.lateness_ms is not None)
    if not values:
        return {}
    rank = {name: math.ceil(q * len(values)) - 1 for name, q in _QUANTILES}
    return {**{name: values[i] for name, i in rank.items()}, "max": values[-1]}


def lateness_labels() -> list[str]:
    labels = []
    lower = 0
    for bound in LATENESS_BOUNDS_MS:
        labels.append(f"{_ms(lower)} to {_ms(bound)}")
        lower = bound
    labels.append(f"{_ms(lower)} or more")
    return labels


def per_minute_chart(counts: Sequence[int], now: datetime) -> BarChart:
    start = first_minute(now, len(counts))
    labels = [
        f"{(start + timedelta(minutes=i)).strftime('%Y-%m-%d %H:%M')} UTC: {count} fired"
        for i, count in enumerate(counts)
    ]
    return _bars(counts, labels, gap=0.0)


def lateness_chart(counts: Sequence[int]) -> BarChart:
    labels = [
        f"{label}: {count} attempt{'s' if count != 1 else ''}"
        for label, count in zip(lateness_labels(), counts, strict=True)
    ]
    return _bars(counts, labels, gap=4.0)


def _bars(counts: Sequence[int], labels: Sequence[str], gap: float) -> BarChart:
    peak = max(counts, default=0)
    slot = WIDTH / max(len(counts), 1)
    bars = []
    for i, (count, label) in enumerate(zip(counts, labels, strict=True)):
        height = 0.0 if peak == 0 else HEIGHT * count / peak
        bars.append(
            Bar(
                x=round(i * slot + gap / 2, 2),
                y=round(HEIGHT - height, 2),
                width=round(max(slot - gap, 0.5), 2),
                height=round(height, 2),
                label=label,
                count=count,
            )
        )
    return BarChart(bars=bars, total=sum(counts), peak=peak)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _ms(value: int) -> str:
    return f"{value // 1000} s" if value >= 1000 and value % 1000 == 0 else f"{value} ms"
