"""`python -m local_durable_host`: run the app on this machine without Core Tools.

Reads local.settings.json's Values as `func start` does (the environment wins), then serves
the app's routes on 127.0.0.1 until Ctrl-C or a TERM. Storage (Azurite) must be running:
scripts/run-local.sh starts it and then this, when Core Tools cannot be had.
"""

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TypeVar

from local_durable_host.local_host import ACTIVITY_WORKERS, RETENTION, WORKER_PROCESSES
from local_durable_host.worker_processes import MAX_WORKER_PROCESSES

DEFAULT_RETENTION_HOURS = RETENTION / timedelta(hours=1)
# Published in this repository's history: never accepted, whoever sends them.
PUBLISHED_KEYS = frozenset({"local-function-key", "local-master-key"})

BANNER = """\
==> Durable Scheduler on the LOCAL DURABLE HOST (not the Azure Functions host)
    API:   {base_url}/api/   (header x-functions-key, or ?code=)
    keys:  function key {function_key}   master (admin) key {master_key}
           {where}
    webhook signing secret: {webhook_secret}
    minimum lead: {min_lead} (MIN_LEAD_SECONDS; 60 s by default in Azure)
    state: {state_dir}/ (kept across restarts; delete it to start empty)
    retention: finished orchestrations are purged {retention_hours:g} h after they finish
               (--retention-hours, LOCAL_HOST_RETENTION_HOURS); running ones never
    activities: {activity_workers} at once (--activity-workers, LOCAL_HOST_ACTIVITY_WORKERS){delay},
               {where_activities} (--worker-processes, FUNCTIONS_WORKER_PROCESS_COUNT)
    What differs from `func start` and Azure: one host, no scale-out; timers fire
    within about 0.5 s of their time, not at the host's queue polling (up to 10-30 s late);
    no extension bundle: the Durable extension's behaviour is emulated as documented in
    docs/local-development.md; the Durable HTTP webhooks are not served.
    Stop with Ctrl-C."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_durable_host", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("FUNC_PORT", "7071")))
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    parser.add_argument("--state-dir", type=Path, default=Path(".local-host"))
    parser.add_argument(
        "--retention-hours",
        type=float,
        help="purge finished orchestrations this long after they finish "
        f"(env LOCAL_HOST_RETENTION_HOURS; default {DEFAULT_RETENTION_HOURS:g})",
    )
    parser.add_argument(
        "--activity-workers",
        type=int,
        help="activities run at once (env LOCAL_HOST_ACTIVITY_WORKERS; "
        f"default {ACTIVITY_WORKERS})",
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        help="Python worker processes that run the app's HTTP functions and activities, as "
        "the Functions host starts them; 0 runs them in the host's own process (env "
        "FUNCTIONS_WORKER_PROCESS_COUNT; "
        f"default {WORKER_PROCESSES})",
    )
    parser.add_argument(
        "--activity-start-delay-seconds",
        type=float,
        help="each activity waits this long in the queue before it starts, as on Azure Storage "
        "under load (env LOCAL_HOST_ACTIVITY_START_DELAY_SECONDS; default 0)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="log at DEBUG, the Azure SDK's line per storage request included "
        "(as SCHEDULER_LOG_LEVEL=DEBUG; default INFO without them)",
    )
    options = parser.parse_args(argv)
    _load_settings(options.settings)
    from blueprints.telemetry import log_level, quiet_sdk_requests

    level = logging.DEBUG if options.verbose else log_level(os.environ)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_sdk_requests(level)
    try:
        tuning = host_tuning(options, os.environ)
    except ValueError as error:
        parser.error(str(error))

    # After the settings: the app reads them as it imports and runs.
    from function_app import app
    from local_durable_host.app_server import Keys
    from local_durable_host.local_host import LocalHost, StateInUse

    configured = [_key("LOCAL_HOST_FUNCTION_KEY"), _key("LOCAL_HOST_MASTER_KEY")]
    keys = Keys(*(key or secrets.token_urlsafe(32) for key in configured))
    where = (
        f"(LOCAL_HOST_FUNCTION_KEY, LOCAL_HOST_MASTER_KEY in {options.settings})"
        if all(configured)
        else f"(made for this run only: set LOCAL_HOST_FUNCTION_KEY and LOCAL_HOST_MASTER_KEY "
        f"in {options.settings} to keep keys; scripts/run-local.sh makes them)"
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        host = LocalHost(
            app,
            options.state_dir,
            keys,
            options.port,
            activity_workers=tuning.activity_workers,
            retention=tuning.retention,
            activity_start_delay=tuning.activity_start_delay,
            worker_processes=tuning.worker_processes,
        )
    except (StateInUse, OSError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with host:
        delay = tuning.activity_start_delay.total_seconds()
        print(
            BANNER.format(
                base_url=host.base_url,
                function_key=keys.function_key,
                master_key=keys.master_key,
                where=where,
                webhook_secret=webhook_secret_note(options.settings, os.environ),
                min_lead=f"{os.environ.get('MIN_LEAD_SECONDS', '').strip() or '60'} s",
                state_dir=options.state_dir,
                retention_hours=tuning.retention / timedelta(hours=1),
                activity_workers=tuning.activity_workers,
                delay=f"; each starts {delay:g} s after it is scheduled" if delay else "",
                where_activities=(
                    f"in {tuning.worker_processes} worker process(es)"
                    if tuning.worker_processes
                    else "in the host's own process"
                ),
            ),
            flush=True,
        )
        stop.wait()
        print("==> stopping the local durable host", flush=True)
    return 0


@dataclass(frozen=True)
class HostTuning:
    retention: timedelta
    activity_workers: int
    activity_start_delay: timedelta
    worker_processes: int


_Number = TypeVar("_Number", int, float)


def host_tuning(options: argparse.Namespace, environ: Mapping[str, str]) -> HostTuning:
    """The host's settings: each flag, else its environment variable (local.settings.json's
    Values count), else the default; ValueError names the one that is out of range."""

    def setting(
        flag: _Number | None, variable: str, parse: Callable[[str], _Number], default: _Number
    ) -> _Number:
        if flag is not None:
            return flag
        text = environ.get(variable, "").strip()
        if not text:
            return default
        try:
            return parse(text)
        except ValueError:
            raise ValueError(f"{variable}={text!r} is not a number") from None

    hours = setting(
        options.retention_hours, "LOCAL_HOST_RETENTION_HOURS", float, DEFAULT_RETENTION_HOURS
    )
    workers = setting(
        options.activity_workers, "LOCAL_HOST_ACTIVITY_WORKERS", int, ACTIVITY_WORKERS
    )
    delay = setting(
        options.activity_start_delay_seconds, "LOCAL_HOST_ACTIVITY_START_DELAY_SECONDS", float, 0.0
    )
    if not 0 < hours < 1_000_000:
        raise ValueError(f"the retention must be more than 0 hours (got {hours:g})")
    if not 1 <= workers <= 256:
        raise ValueError(f"activity workers must be 1 to 256 (got {workers})")
    processes = setting(
        options.worker_processes, "FUNCTIONS_WORKER_PROCESS_COUNT", int, WORKER_PROCESSES
    )
    if not 0 <= processes <= MAX_WORKER_PROCESSES:
        raise ValueError(f"worker processes must be 0 to {MAX_WORKER_PROCESSES} (got {processes})")
    if not 0 <= delay <= 86_400:
        raise ValueError(f"the activity start delay must be 0 to 86400 seconds (got {delay:g})")
    return HostTuning(
        retention=timedelta(hours=hours),
        activity_workers=workers,
        activity_start_delay=timedelta(seconds=delay),
        worker_processes=processes,
    )


def webhook_secret_note(settings: Path, environ: Mapping[str, str]) -> str:
    """Where the secret that signs deliveries is (never the secret itself), or that none is."""
    if not environ.get("WEBHOOK_SIGNING_SECRETS", "").strip():
        return (
            "none: deliveries are not signed (set WEBHOOK_SIGNING_SECRETS; "
            "scripts/run-local.sh makes one)"
        )
    in_file = settings.exists() and bool(
        json.loads(settings.read_text()).get("Values", {}).get("WEBHOOK_SIGNING_SECRETS")
    )
    where = f"in {settings}" if in_file else "from the environment"
    return (
        f"WEBHOOK_SIGNING_SECRETS {where} (the receiver's SCHEDULER_WEBHOOK_SECRET; "
        "docs/webhooks.md)"
    )


def _key(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value if value and value not in PUBLISHED_KEYS else None


def _load_settings(path: Path) -> None:
    if not path.exists():
        print(f"warning: {path} not found; using the environment only", file=sys.stderr)
        return
    values = json.loads(path.read_text()).get("Values", {})
    for name, value in values.items():
        os.environ.setdefault(name, str(value))


if __name__ == "__main__":
    sys.exit(main())
