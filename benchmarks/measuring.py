"""What every benchmark measures the same way: percentiles, another process's CPU time, the
machine's load average."""

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def process_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid` so far (schedstat: nanoseconds, not 10 ms ticks)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return total / 1e9


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and of every process it started that is still running (the local
    host's worker processes), so far."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += process_cpu_seconds(current)
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                pending.extend(int(child) for child in children)
    return total


def load_average() -> float:
    """The machine's 1-minute load average: other work on the machine shows in the figures,
    and here."""
    return os.getloadavg()[0]
