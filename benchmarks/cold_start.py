"""Cold start: `import function_app` plus indexing, against a bare DFApp with one route.

Each sample is a whole new Python process (what a Functions worker pays on a cold start);
the figure is the ratio of the medians. Run from the repository root:

    .venv/bin/python -m benchmarks.cold_start [--runs 9]
"""

import argparse
import statistics
import subprocess
import sys
import time

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


def seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our own interpreter
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    for _ in range(2):  # warm the file system cache for both
        seconds(BARE_APP)
        seconds(THIS_APP)
    bare = statistics.median(seconds(BARE_APP) for _ in range(runs))
    app = statistics.median(seconds(THIS_APP) for _ in range(runs))
    print(f"bare DFApp, one route: {bare * 1000:.0f} ms (median of {runs} processes)")
    print(f"function_app + indexing: {app * 1000:.0f} ms (median of {runs} processes)")
    print(f"ratio: {app / bare:.2f}x")


if __name__ == "__main__":
    main()
