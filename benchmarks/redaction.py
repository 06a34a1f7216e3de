"""How long showing a hostile URL takes: `redact_url` on 256 KiB values of several shapes.

The security review measured 10.8 s for 64 KiB of `?a` with the old redactor, which scanned
from every `?`. Run from the repository root:

    .venv/bin/python -m benchmarks.redaction
"""

import statistics
import time

from scheduling.redaction import redact_url

SIZE = 256 * 1024
SHAPES = {
    "?a repeated": "https://h.example/" + "?a" * (SIZE // 2),
    "&k=v repeated": "https://h.example/p?" + "&key=v" * (SIZE // 6),
    "one long path": "https://h.example/" + "a/" * (SIZE // 2),
    "no scheme": "?" * SIZE,
    "percent escapes": "https://h.example/?" + "%6Bey=%41" * (SIZE // 9),
}


def main() -> None:
    print(f"redact_url on {SIZE // 1024} KiB values (median and worst of 50 runs)")
    for name, value in SHAPES.items():
        runs = []
        for _ in range(50):
            started = time.perf_counter()
            redact_url(value)
            runs.append(time.perf_counter() - started)
        median, worst = statistics.median(runs) * 1e3, max(runs) * 1e3
        print(f"  {name:16} median {median:.3f} ms, max {worst:.3f} ms")


if __name__ == "__main__":
    main()
