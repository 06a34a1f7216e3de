"""Put the host.json of the deployment's Durable backend in place while azd packages the app.

    python3 scripts/select_host_json.py select    # azure.yaml: the api service's prepackage hook
    python3 scripts/select_host_json.py restore   # and its postpackage hook

`select` reads DURABLE_BACKEND (azd passes the environment's values to hooks): for `storage`
(or unset) it does nothing; for `dts` it keeps host.json aside and writes one that runs Durable
Functions on the Durable Task Scheduler. It refuses, changing nothing, when the infrastructure
was provisioned for the other backend (DURABLE_BACKEND_PROVISIONED, an output of main.bicep):
after `azd env set DURABLE_BACKEND ...`, `azd deploy` alone would ship a host.json for resources
and app settings that do not exist yet. `restore` puts the kept file back, byte for byte, so
the working tree, the local host and its tests never see the `dts` file. A `select` that finds
a file kept by a package step that failed before `restore` puts it back first.

Why a file at package time and not an app setting: the Durable extension picks its backend by
host.json's extensions.durableTask.storageProvider.type, compared verbatim with each provider's
name (azure-functions-durable-extension, DurableTaskExtension.GetDurabilityProviderFactory);
only hubName goes through %SETTING% substitution (DurableTaskOptions.ResolveAppSettingOptions).
An `AzureFunctionsJobHost__extensions__durableTask__storageProvider__type` app setting would
reach the extension (the WebJobs host adds environment variables after host.json), but the scale
controller is sent the durableTask section of the host.json FILE (azure-functions-host,
FunctionsSyncManager.ReadDurableTaskConfig), so it would keep watching Azure Storage queues
while the app works on the scheduler. docs/deploy.md has the details and the commits read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

BACKENDS = ("storage", "dts")
HOST_JSON = "host.json"
# The developer's host.json while the `dts` one is in place (.funcignore keeps it out of the
# package, .gitignore out of commits).
KEPT = ".host.json.kept"
# The settings infra/modules/function-app.bicep sets in the `dts` variant.
CONNECTION_SETTING = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
TASK_HUB_SETTING = "TASKHUB_NAME"
# The first extension bundle whose extensions.json lists the AzureManaged provider
# (Microsoft.Azure.WebJobs.Extensions.DurableTask.AzureManaged): tag 4.30.0 of
# azure-functions-extension-bundles.
BUNDLE_RANGE = "[4.30.0, 5.0.0)"


def for_durable_task_scheduler(host: dict[str, Any]) -> dict[str, Any]:
    """`host` (the developer's host.json) with Durable Functions on the Durable Task Scheduler;
    every other setting as it was."""
    chosen: dict[str, Any] = json.loads(json.dumps(host))
    chosen["extensionBundle"]["version"] = BUNDLE_RANGE
    durable = chosen["extensions"]["durableTask"]
    durable["hubName"] = f"%{TASK_HUB_SETTING}%"
    # The Azure Storage provider's options (queue polling) mean nothing to this provider.
    durable["storageProvider"] = {
        "type": "azureManaged",
        "connectionStringName": CONNECTION_SETTING,
    }
    return chosen


def restore(root: Path) -> bool:
    """Put the kept host.json back; whether there was one."""
    kept = root / KEPT
    if not kept.exists():
        return False
    (root / HOST_JSON).write_bytes(kept.read_bytes())
    kept.unlink()
    return True


def select(root: Path, backend: str, provisioned: str | None = None) -> None:
    if backend not in BACKENDS:
        raise SystemExit(f"DURABLE_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if provisioned and provisioned != backend:
        raise SystemExit(
            f"DURABLE_BACKEND is {backend} but the infrastructure was provisioned for "
            f"{provisioned}: run `azd up` (or `azd provision`, then `azd deploy`)"
        )
    restore(root)
    if backend == "storage":
        return
    host_json = root / HOST_JSON
    original = host_json.read_bytes()
    chosen = for_durable_task_scheduler(json.loads(original))
    (root / KEPT).write_bytes(original)
    host_json.write_text(json.dumps(chosen, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("action", choices=("select", "restore"))
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the app's folder")
    args = parser.parse_args(argv)
    if args.action == "restore":
        restore(args.root)
        return 0
    backend = os.environ.get("DURABLE_BACKEND") or "storage"
    select(args.root, backend, os.environ.get("DURABLE_BACKEND_PROVISIONED"))
    print(f"host.json for DURABLE_BACKEND={backend}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
