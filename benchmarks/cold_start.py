"""Cold start: `import function_app` plus indexing, against a bare DFApp with one route.

Each sample is a whole new Python process (what a Functions worker pays on a cold start).
The two are interleaved (bare, app, bare, app, ...) so that a change of the machine's load
during the run falls on both alike; the figure is the ratio of the medians. Run from the
repository root:

    .venv/bin/python -m benchmarks.cold_start [--runs 9] [--json PATH]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.measuring import load_average

BARE_APP = """
import azure.durable_functions as df
import azure.functions as func
app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
@app.route(route="ping")
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
app.get_functions()
"""
THIS_APP = "import function_app\nfunction_app.app.get_functions()"
# The target for the ratio.
TARGET = 1.3


def seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our own interpreter
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="processes of each kind")
    parser.add_argument("--json", type=Path, help="also write the samples here")
    args = parser.parse_args()
    for _ in range(2):  # warm the file system cache for both
        seconds(BARE_APP)
        seconds(THIS_APP)
    load_before = load_average()
    bare_samples, app_samples = [], []
    for _ in range(args.runs):
        bare_samples.append(seconds(BARE_APP))
        app_samples.append(seconds(THIS_APP))
    load_after = load_average()
    bare, app = statistics.median(bare_samples), statistics.median(app_samples)
    ratio = app / bare
    print(f"bare DFApp, one route: {bare * 1000:.0f} ms (median of {args.runs} processes)")
    print(f"function_app + indexing: {app * 1000:.0f} ms (median of {args.runs} processes)")
    print(f"ratio: {ratio:.2f}x (target: at most {TARGET:g}x)")
    print(f"bare and app interleaved; load average {load_before:.2f} -> {load_after:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "bare_seconds": bare_samples,
                    "app_seconds": app_samples,
                    "bare_median": bare,
                    "app_median": app,
                    "ratio": ratio,
                    "load_average": [load_before, load_after],
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
