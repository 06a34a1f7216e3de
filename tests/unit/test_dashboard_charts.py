"""The dashboard's charts: counts per minute of the last day, lateness buckets, bar sizes."""

from datetime import UTC, datetime, timedelta

from dashboard.charts import (
    DAY_MINUTES,
    HEIGHT,
    FiredAttempt,
    fired_per_minute,
    first_minute,
    fitted_minutes,
    lateness_chart,
    lateness_histogram,
    lateness_labels,
    per_minute_chart,
    percentiles,
)

NOW = datetime(2026, 12, 1, 8, 0, 30, tzinfo=UTC)


def fired(minutes_ago: float, lateness_ms: float | None = None) -> FiredAttempt:
    return FiredAttempt(NOW - timedelta(minutes=minutes_ago), lateness_ms)


def test_attempts_count_in_their_minute_and_older_ones_not_at_all() -> None:
    counts = fired_per_minute(
        [fired(0), fired(0.1), fired(1), fired(DAY_MINUTES - 0.6), fired(DAY_MINUTES + 1)], NOW
    )
    assert len(counts) == DAY_MINUTES
    assert counts[-1] == 2  # this minute (08:00)
    assert counts[-2] == 1
    assert counts[0] == 1  # the oldest minute still in the day
    assert sum(counts) == 4


def test_lateness_falls_in_its_bucket_and_early_counts_as_on_time() -> None:
    counts = lateness_histogram(
        [fired(0, -5), fired(0, 99), fired(0, 100), fired(0, 2_500), fired(0, 61_000), fired(0)]
    )
    labels = lateness_labels()
    assert len(counts) == len(labels)
    by_label = dict(zip(labels, counts, strict=True))
    assert by_label["0 ms to 100 ms"] == 2
    assert by_label["100 ms to 250 ms"] == 1
    assert by_label["2 s to 5 s"] == 1
    assert by_label["60 s or more"] == 1
    assert sum(counts) == 5  # the attempt with no known due time is not counted


def test_the_busiest_bar_fills_the_chart_and_the_others_in_proportion() -> None:
    chart = lateness_chart([0, 4, 2, 0, 0, 0, 0, 0, 0, 0])
    heights = [bar.height for bar in chart.bars]
    assert heights[1] == HEIGHT
    assert heights[2] == HEIGHT / 2
    assert heights[0] == 0
    assert chart.total == 6
    assert all(bar.y + bar.height == HEIGHT for bar in chart.bars)


def test_an_empty_day_draws_no_bar() -> None:
    chart = per_minute_chart([0] * DAY_MINUTES, NOW)
    assert chart.peak == 0
    assert all(bar.height == 0 for bar in chart.bars)
    assert chart.bars[-1].label.startswith("2026-12-01 08:00 UTC")


def test_percentiles_by_nearest_rank() -> None:
    values = [fired(0, float(ms)) for ms in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles([fired(0)]) == {}


def test_the_window_is_the_shortest_that_holds_the_oldest_attempt_of_the_day() -> None:
    assert fitted_minutes([], NOW) is None
    assert fitted_minutes([fired(DAY_MINUTES + 1)], NOW) is None  # older than a day
    assert fitted_minutes([fired(0)], NOW) == 60
    assert fitted_minutes([fired(0), fired(59)], NOW) == 60
    assert fitted_minutes([fired(0), fired(60)], NOW) == 120
    assert fitted_minutes([fired(150)], NOW) == 180
    assert fitted_minutes([fired(5 * 60)], NOW) == 6 * 60
    assert fitted_minutes([fired(13 * 60), fired(DAY_MINUTES + 30)], NOW) == DAY_MINUTES
    assert fitted_minutes([fired(DAY_MINUTES - 0.6)], NOW) == DAY_MINUTES


def test_a_fitted_window_counts_its_minutes_and_starts_where_its_labels_say() -> None:
    attempts = [fired(0), fired(20), fired(20.2), fired(59.4), fired(61)]
    minutes = fitted_minutes(attempts, NOW)
    assert minutes == 120
    counts = fired_per_minute(attempts, NOW, minutes)
    assert len(counts) == 120
    assert (counts[-1], counts[-21], counts[-60], counts[-62]) == (1, 2, 1, 1)
    assert sum(counts) == 5
    chart = per_minute_chart(counts, NOW)
    start = first_minute(NOW, minutes)
    assert start == datetime(2026, 12, 1, 6, 1, tzinfo=UTC)
    assert chart.bars[0].label.startswith("2026-12-01 06:01 UTC")
    assert chart.bars[0].width == 8.0  # 960 px over 120 minutes
