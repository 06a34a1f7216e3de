"""How long `scripts/run-local.sh` takes to restart when nothing changed, against the same
restart with a pip run (what every start cost before the requirements stamp).

`.venv/bin/python -m benchmarks.run_local_restart [--rounds 5]`

Runs the real script in a copy of the checkout (tests/support/run_local_script.py: the app's
code and the venv linked, the real requirements.txt, Azurite and the local durable host on
free ports, SCHEDULER_HOST=local). One first start makes the keys, the state and the stamp.
Then each round restarts it twice, in an order that alternates per round: "unchanged" (the
stamp matches requirements.txt: no pip) and "pip" (the stamp removed: pip checks every pin,
as each start did before). A restart is timed from the script's launch to the first
`/api/healthz` answer of 200, i.e. until the API serves; the script is then stopped with a
TERM and waited for. Medians per kind, the ratio, and the load average before and after.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.measuring import load_average
from tests.support.run_local_script import REPO, checkout_copy, free_ports, run_local

STAMP = Path(".venv") / ".run-local-requirements"


def restart_seconds(root: Path) -> float:
    ports = free_ports()
    health = f"http://127.0.0.1:{ports['FUNC_PORT']}/api/healthz"
    started = time.monotonic()
    with run_local(root, ports) as script, httpx.Client(trust_env=False, timeout=2) as client:
        while True:
            if script.process.poll() is not None:
                raise RuntimeError(f"run-local.sh exited:\n{script.text()}")
            try:
                if client.get(health).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = checkout_copy(Path(folder) / "clone", (REPO / "requirements.txt").read_text())
        first = restart_seconds(root)
        print(f"first start (keys, state, pip, stamp): {first:.2f} s")
        samples: dict[str, list[float]] = {"unchanged": [], "pip": []}
        load_before = load_average()
        for round_number in range(options.rounds):
            order = ["unchanged", "pip"] if round_number % 2 == 0 else ["pip", "unchanged"]
            for kind in order:
                if kind == "pip":
                    (root / STAMP).unlink(missing_ok=True)
                seconds = restart_seconds(root)
                samples[kind].append(seconds)
                print(f"round {round_number + 1}: {kind:9} {seconds:.2f} s", flush=True)
        load_after = load_average()
    unchanged = statistics.median(samples["unchanged"])
    pip = statistics.median(samples["pip"])
    print(
        f"restart, nothing changed: median {unchanged:.2f} s "
        f"(min {min(samples['unchanged']):.2f}, max {max(samples['unchanged']):.2f})\n"
        f"restart with a pip run:   median {pip:.2f} s "
        f"(min {min(samples['pip']):.2f}, max {max(samples['pip']):.2f})\n"
        f"ratio {pip / unchanged:.2f}x; {options.rounds} rounds, alternated; load average "
        f"{load_before:.2f} -> {load_after:.2f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
