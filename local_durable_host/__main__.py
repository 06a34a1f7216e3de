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
from pathlib import Path
from types import FrameType

# Published in this repository's history: never accepted, whoever sends them.
PUBLISHED_KEYS = frozenset({"local-function-key", "local-master-key"})

BANNER = """\
==> Durable Scheduler on the LOCAL DURABLE HOST (not the Azure Functions host)
    API:   {base_url}/api/   (header x-functions-key, or ?code=)
    keys:  function key {function_key}   master (admin) key {master_key}
           {where}
    state: {state_dir}/ (kept across restarts; delete it to start empty)
    What differs from `func start` and Azure: one process, no scale-out; timers fire
    within about 0.5 s of their time, not at the host's queue polling (up to 10-30 s late);
    no extension bundle: the Durable extension's behaviour is emulated as documented in
    docs/local-development.md; the Durable HTTP webhooks are not served.
    Stop with Ctrl-C."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_durable_host", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("FUNC_PORT", "7071")))
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    parser.add_argument("--state-dir", type=Path, default=Path(".local-host"))
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _load_settings(options.settings)

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
        host = LocalHost(app, options.state_dir, keys, options.port)
    except (StateInUse, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with host:
        print(
            BANNER.format(
                base_url=host.base_url,
                function_key=keys.function_key,
                master_key=keys.master_key,
                where=where,
                state_dir=options.state_dir,
            ),
            flush=True,
        )
        stop.wait()
        print("==> stopping the local durable host", flush=True)
    return 0


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
