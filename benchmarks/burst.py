"""A burst of jobs due at ONE instant to ONE local receiver: our app on the local durable host
(A) against APScheduler (B), alternated in one run.

`.venv/bin/python -m benchmarks.burst [--jobs 2000] [--rounds 3] [--lead S] [--json PATH]`

Whole at ~500 lines: one A/B method, both sides' runs beside the receiver's capacity and
the tables that compare them.

The receiver (`tests/support/arrival_receiver.py`) is a process of its own on 127.0.0.1 that
notes when each request arrived and the transaction id it carried; before the rounds, the
benchmark measures how many requests a second it serves (kept-alive and new connections), so
a reader can see it is not what limits either side. Then, `--rounds` times, A then B:

- A, ours: a fresh in-memory Azurite and `python -m local_durable_host` in processes of their
  own, with a developer's settings (those of `tests/live/local_host_process.py`, as
  scripts/run-local.sh writes them: local sealing and fingerprint keys, a webhook signing
  secret, loopback targets allowed) and MIN_LEAD_SECONDS=1. `--jobs` http.call jobs (POST, a
  small JSON body, to the receiver) are created over HTTP, `--create-threads` at a time,
  all due at the same whole second, `--lead` seconds after the round starts. The round
  fails if any create is refused or is answered after that instant.
- B, the peer (`benchmarks/peer_scheduler.py`): APScheduler 3.11, its SQLAlchemy job store on
  a fresh SQLite file, 8 threads, one shared httpx.Client configured as ours; the same
  number of jobs added one after another with run_date = the instant, the same lead, the
  same check.

For each run: fires/s = jobs / (the last job's first arrival - the instant), lateness
(first arrival of each job - the instant) p50, p95 and max, whether every job arrived
exactly once (no job missing, none twice, nothing unknown), the load average before and
after, and the CPU seconds each side's processes spent from the instant until the burst
was done (A: the host and Azurite, until the app had recorded every outcome: no live job
left in its listing; B: this process, until APScheduler's store held no job). The summary
gives each side's medians and the ratio B/A of the median drain rates. docs/benchmarks.md
says how to read them (what one attempt sends to Table Storage is benchmarks/attempt_cost.py's).
"""

import argparse
import asyncio
import base64
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.measuring import load_average, percentile, process_tree_cpu_seconds
from benchmarks.peer_scheduler import PEER_THREADS, PeerScheduler
from scheduling.timing import format_utc
from tests.live.local_host_process import LocalHostProcess
from tests.support.arrival_receiver import Arrival, ArrivalReceiver
from tests.support.local_servers import running_azurite
from tests.support.loopback_guard import loopback_only

# What a developer's local.settings.json has beyond LocalHostProcess's own: the lead lowered
# so that a run is short, and a signing secret as scripts/run-local.sh makes one (made for
# this benchmark only).
DEVELOPER_SETTINGS = {
    "MIN_LEAD_SECONDS": "1",
    "WEBHOOK_SIGNING_SECRETS": "whsec_"
    + base64.b64encode(b"burst benchmark signing key!").decode(),
}
# After the last arrival, how long to keep listening for a second call of any job.
SETTLE_SECONDS = 2.0
# The receiver must serve at least this many times the fastest drain measured.
RECEIVER_HEADROOM = 5.0


@dataclass
class Run:
    """One side's burst in one round."""

    round: int
    side: str  # "A" (ours) or "B" (APScheduler)
    jobs: int
    instant: float  # time.time() of the due instant
    accept_seconds: float  # from the first create (add) to the last one's answer
    spare_seconds: float  # from the last answer to the instant
    fires_per_second: float
    lateness_p50: float
    lateness_p95: float
    lateness_max: float
    missing: int
    twice_or_more: int
    unknown: int
    done_seconds: float  # from the instant until the side had recorded the burst as done
    load_before: float
    load_after: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # A: its jobs that failed (the app's failed list), by error: why any is "missing".
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def exactly_once(self) -> bool:
        return self.missing == self.twice_or_more == self.unknown == 0


@dataclass
class Accepted:
    ids: list[str]
    seconds: float  # taken to accept them all
    finished_at: float  # time.time() when the last was accepted


def next_instant(lead: float) -> float:
    """The whole second at least `lead` seconds from now (time.time())."""
    return float(math.ceil(time.time() + lead))


def check_lead(side: str, accepted: Accepted, instant: float, receiver: ArrivalReceiver) -> None:
    if accepted.finished_at >= instant:
        raise SystemExit(
            f"{side}: accepting {len(accepted.ids)} jobs took {accepted.seconds:.1f} s and ended "
            f"{accepted.finished_at - instant:.1f} s after their due instant: raise --lead"
        )
    if receiver.count():
        raise SystemExit(f"{side}: calls arrived before the due instant")


def wait_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))


def wait_for(what: str, done: Callable[[], bool], deadline: float) -> None:
    while not done():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}: raise --timeout")
        time.sleep(0.2)


def measured_run(
    round_number: int,
    side: str,
    accepted: Accepted,
    instant: float,
    receiver: ArrivalReceiver,
    done_at: float,
    load_before: float,
    cpu_seconds: dict[str, float],
) -> Run:
    """The figures of one burst, from what the receiver noted."""
    time.sleep(SETTLE_SECONDS)
    arrivals = receiver.arrivals()
    expected = set(accepted.ids)
    calls = Counter(arrival.transaction_id for arrival in arrivals)
    first: dict[str, Arrival] = {}
    for arrival in arrivals:
        first.setdefault(arrival.transaction_id, arrival)
    # A second call of a job is counted below, not timed: the drain ends with the last job's
    # first call.
    lateness = sorted(first[i].at - instant for i in expected if i in first)
    return Run(
        round=round_number,
        side=side,
        jobs=len(expected),
        instant=instant,
        accept_seconds=accepted.seconds,
        spare_seconds=instant - accepted.finished_at,
        fires_per_second=len(expected) / lateness[-1],
        lateness_p50=percentile(lateness, 0.5),
        lateness_p95=percentile(lateness, 0.95),
        lateness_max=lateness[-1],
        missing=sum(1 for i in expected if calls[i] == 0),
        twice_or_more=sum(1 for i in expected if calls[i] > 1),
        unknown=sum(n for i, n in calls.items() if i not in expected),
        done_seconds=done_at - instant,
        load_before=load_before,
        load_after=load_average(),
        cpu_seconds=cpu_seconds,
    )


# -- A: our app on the local durable host ---------------------------------------------------


def run_ours(
    round_number: int, args: argparse.Namespace, receiver: ArrivalReceiver, workdir: Path
) -> Run:
    receiver.reset()
    with (
        tempfile.TemporaryDirectory(dir=workdir) as folder,
        running_azurite(Path(folder)) as (azurite, azurite_server),
    ):
        host = LocalHostProcess(azurite, Path(folder), DEVELOPER_SETTINGS)
        host.start()
        try:
            pids = {"local host": host.pid, "Azurite": azurite_server.pid}
            run = burst_on_host(round_number, args, receiver, host, pids)
        finally:
            host.stop()
    return run


def burst_on_host(
    round_number: int,
    args: argparse.Namespace,
    receiver: ArrivalReceiver,
    host: LocalHostProcess,
    pids: dict[str, int],
) -> Run:
    load_before = load_average()
    instant = next_instant(args.lead)
    exec_at = format_utc(datetime.fromtimestamp(instant, UTC))
    with httpx.Client(
        base_url=host.base_url,
        headers={"x-functions-key": host.function_key},
        trust_env=False,
        timeout=60,
        limits=httpx.Limits(max_connections=args.create_threads),
    ) as api:

        def create(number: int) -> str:
            body = {
                "exec_at": exec_at,
                "prompt_type": "http.call",
                "payload": {"method": "POST", "url": receiver.url, "json": {"n": number}},
            }
            reply = api.post("/api/schedule", json=body)
            if reply.status_code != 202:
                raise SystemExit(f"A: create {number} answered {reply.status_code}: {reply.text}")
            transaction_id: str = reply.json()["transaction_id"]
            return transaction_id

        started = time.time()
        with ThreadPoolExecutor(args.create_threads) as pool:
            ids = list(pool.map(create, range(args.jobs)))
        finished = time.time()
        accepted = Accepted(ids, finished - started, finished)
        check_lead("A", accepted, instant, receiver)
        wait_until(instant)
        cpu_before = {name: process_tree_cpu_seconds(pid) for name, pid in pids.items()}
        deadline = instant + args.timeout

        def no_live_job() -> bool:
            # A page may come back short (its rows were of jobs that just ended), even empty
            # with a cursor: only the last page says nothing is live.
            cursor = None
            while True:
                params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                listing = api.get("/api/schedule", params=params)
                listing.raise_for_status()
                page = listing.json()
                if page["jobs"]:
                    return False
                cursor = page["next_cursor"]
                if cursor is None:
                    return True

        # Every call arrived, or (a job failed without reaching the receiver: "exactly once"
        # then says so) every job has ended.
        wait_for(
            "every call of A", lambda: receiver.count() >= args.jobs or no_live_job(), deadline
        )
        wait_for("A to record every outcome", no_live_job, deadline)
        done_at = time.time()
        failures = failed_outcomes(api)
        time.sleep(SETTLE_SECONDS)
        arrived = set(receiver.calls())
        for transaction_id in [i for i in ids if i not in arrived][:50]:
            status = api.get(f"/api/schedule/{transaction_id}/status").json()
            outcome = status.get("last_outcome") or {}
            why = f"{status.get('state')}: {outcome.get('status_code')} {outcome.get('error')}"
            failures[f"never arrived, {why}"] = failures.get(f"never arrived, {why}", 0) + 1
    cpu = {name: process_tree_cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    run = measured_run(round_number, "A", accepted, instant, receiver, done_at, load_before, cpu)
    run.failures = failures
    return run


def failed_outcomes(api: httpx.Client) -> dict[str, int]:
    """How many of A's jobs failed, by the error of their last attempt (the failed list)."""
    errors: Counter[str] = Counter()
    cursor = None
    while True:
        page = api.get(
            "/api/failed", params={"limit": 500, **({"cursor": cursor} if cursor else {})}
        )
        page.raise_for_status()
        for job in page.json()["jobs"]:
            errors[str((job.get("last_outcome") or {}).get("error"))] += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return dict(errors)


# -- B: APScheduler ---------------------------------------------------------------------------


def run_peer(
    round_number: int, args: argparse.Namespace, receiver: ArrivalReceiver, workdir: Path
) -> Run:
    receiver.reset()
    load_before = load_average()
    with (
        tempfile.TemporaryDirectory(dir=workdir) as folder,
        PeerScheduler(Path(folder) / "jobs.sqlite") as peer,
    ):
        instant = next_instant(args.lead)
        started = time.time()
        ids = peer.add(receiver.url, datetime.fromtimestamp(instant, UTC), args.jobs)
        finished = time.time()
        accepted = Accepted(ids, finished - started, finished)
        check_lead("B", accepted, instant, receiver)
        wait_until(instant)
        cpu_before = time.process_time()
        deadline = instant + args.timeout
        wait_for("every call of B", lambda: receiver.count() >= args.jobs, deadline)
        wait_for("B to empty its job store", lambda: peer.stored_jobs() == 0, deadline)
        done_at = time.time()
        cpu = {"this process (APScheduler)": time.process_time() - cpu_before}
    return measured_run(round_number, "B", accepted, instant, receiver, done_at, load_before, cpu)


# -- the receiver's own capacity -----------------------------------------------------------


async def _blast(url: str, requests: int, concurrency: int, keep_alive: bool) -> float:
    from aiohttp import ClientSession, TCPConnector

    connector = TCPConnector(limit=concurrency, force_close=not keep_alive)
    async with ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one(number: int) -> None:
            async with gate, session.post(url, json={"n": number}) as answer:
                await answer.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(number) for number in range(requests)))
        return requests / (time.perf_counter() - started)


def receiver_capacity(receiver: ArrivalReceiver, requests: int) -> dict[str, float]:
    """Requests a second the receiver served to 32 concurrent clients in this process (a lower
    bound: the clients share this process's one core), kept-alive and a connection each."""
    capacity = {
        "kept-alive connections": asyncio.run(_blast(receiver.url, requests, 32, True)),
        "a new connection per request": asyncio.run(_blast(receiver.url, requests, 32, False)),
    }
    if receiver.count() != 2 * requests:
        raise SystemExit(f"the receiver noted {receiver.count()} of {2 * requests} requests")
    receiver.reset()
    return capacity


# -- output ----------------------------------------------------------------------------------


SIDES = {"A": "ours, local durable host", "B": f"APScheduler, SQLite, {PEER_THREADS} threads"}


def runs_table(runs: Sequence[Run]) -> str:
    lines = [
        "| round | side | jobs | accepted in (s) | spare (s) | fires/s | lateness p50 (s) "
        "| p95 (s) | max (s) | exactly once | done after (s) | CPU (s) "
        "| load avg before -> after |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for run in runs:
        once = (
            "yes"
            if run.exactly_once
            else (f"NO: {run.missing} missing, {run.twice_or_more} twice+, {run.unknown} unknown")
        )
        cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in run.cpu_seconds.items())
        lines.append(
            f"| {run.round} | {run.side} | {run.jobs:,} | {run.accept_seconds:.1f} "
            f"| {run.spare_seconds:.1f} | {run.fires_per_second:.1f} | {run.lateness_p50:.2f} "
            f"| {run.lateness_p95:.2f} | {run.lateness_max:.2f} | {once} "
            f"| {run.done_seconds:.1f} | {cpu} | {run.load_before:.2f} -> {run.load_after:.2f} |"
        )
    for run in runs:
        for error, count in sorted(run.failures.items(), key=lambda item: -item[1]):
            lines.append(f"\nround {run.round} {run.side}: {count} failed: {error}")
    return "\n".join(lines)


def medians(runs: Sequence[Run], side: str) -> dict[str, float]:
    mine = [run for run in runs if run.side == side]
    return {
        name: statistics.median(getattr(run, name) for run in mine)
        for name in ("fires_per_second", "lateness_p50", "lateness_p95", "lateness_max")
    }


def summary_table(runs: Sequence[Run]) -> str:
    ours, peer = medians(runs, "A"), medians(runs, "B")
    lines = [
        "| median over rounds | fires/s | lateness p50 (s) | p95 (s) | max (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for side, figures in (("A", ours), ("B", peer)):
        lines.append(
            f"| {side}: {SIDES[side]} | {figures['fires_per_second']:.1f} "
            f"| {figures['lateness_p50']:.2f} | {figures['lateness_p95']:.2f} "
            f"| {figures['lateness_max']:.2f} |"
        )
    per_round = [
        f"{b.fires_per_second / a.fires_per_second:.1f}"
        for a, b in zip(
            [run for run in runs if run.side == "A"],
            [run for run in runs if run.side == "B"],
            strict=True,
        )
    ]
    lines += [
        "",
        f"B/A drain rate (median over median): "
        f"**{peer['fires_per_second'] / ours['fires_per_second']:.1f}x**; "
        f"round by round: {', '.join(per_round)}",
    ]
    return "\n".join(lines)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs due at the one instant")
    parser.add_argument("--rounds", type=int, default=3, help="A, B pairs")
    parser.add_argument(
        "--lead",
        type=float,
        help="seconds from a round's start to the instant (default 20 + jobs / 25)",
    )
    parser.add_argument("--create-threads", type=int, default=8, help="A's creates at once")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds after the instant to give up"
    )
    parser.add_argument(
        "--capacity-requests", type=int, default=3000, help="requests per receiver probe"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.rounds < 1 or args.create_threads < 1:
        parser.error("--jobs, --rounds and --create-threads must be at least 1")
    if args.lead is None:
        args.lead = 20 + args.jobs / 25
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    runs: list[Run] = []
    with (
        loopback_only() as violations,
        tempfile.TemporaryDirectory() as folder,
        ArrivalReceiver(Path(folder)) as receiver,
    ):
        progress("measuring the receiver")
        capacity = receiver_capacity(receiver, args.capacity_requests)
        for round_number in range(1, args.rounds + 1):
            for side, run in (("A", run_ours), ("B", run_peer)):
                progress(f"round {round_number}: {side} ({SIDES[side]}), {args.jobs} jobs")
                runs.append(run(round_number, args, receiver, Path(folder)))
                progress(f"  {runs[-1].fires_per_second:.1f} fires/s")
    if violations:
        raise SystemExit("the benchmark reached beyond loopback: " + "; ".join(violations))
    print(
        f"\n{args.jobs:,} jobs due at one instant to one loopback receiver, {args.rounds} "
        f"round(s) of A then B, lead {args.lead:.0f} s; {os.cpu_count()} CPUs\n"
    )
    print(
        "receiver capacity (requests/s, a lower bound): "
        + ", ".join(f"{name} {rate:,.0f}" for name, rate in capacity.items())
    )
    fastest = max(run.fires_per_second for run in runs)
    if min(capacity.values()) < RECEIVER_HEADROOM * fastest:
        print(
            f"WARNING: the receiver served less than {RECEIVER_HEADROOM:g}x the fastest drain "
            f"({fastest:.0f}/s): it may have limited it"
        )
    print("\n" + runs_table(runs) + "\n")
    print(summary_table(runs))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "arguments": {k: v for k, v in vars(args).items() if k != "json"},
                    "cpus": os.cpu_count(),
                    "receiver_capacity": capacity,
                    "runs": [{**asdict(run), "exactly_once": run.exactly_once} for run in runs],
                    "medians": {side: medians(runs, side) for side in SIDES},
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
