"""azd's package hooks put the `dts` host.json in the package and the developer's back after.

The script runs as azd runs it (a subprocess, DURABLE_BACKEND in its environment) on a copy of
the repository's host.json, so the repository's own file is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .bicep_model import REPO_ROOT
from .test_bicep import DTS_CONNECTION_SETTING, DTS_TASK_HUB_SETTING

SCRIPT = REPO_ROOT / "scripts" / "select_host_json.py"
HOST_JSON = REPO_ROOT / "host.json"
KEPT = ".host.json.kept"


def run(root: Path, action: str, backend: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_BACKEND"}
    if backend is not None:
        env["DURABLE_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, str(SCRIPT), action, "--root", str(root)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "host.json").write_bytes(HOST_JSON.read_bytes())
    return tmp_path


def durable(host: dict[str, Any]) -> dict[str, Any]:
    section = host["extensions"]["durableTask"]
    assert isinstance(section, dict)
    return section


def test_the_repository_host_json_runs_on_azure_storage() -> None:
    """The local host and `func start` read this file: no provider type means Azure Storage."""
    host = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    assert "type" not in durable(host).get("storageProvider", {})
    assert durable(host)["hubName"] == "DurableScheduler"


@pytest.mark.parametrize("backend", [None, "", "storage"])
def test_storage_packages_the_developers_host_json(app: Path, backend: str | None) -> None:
    assert run(app, "select", backend).returncode == 0
    assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()
    assert not (app / KEPT).exists()
    assert run(app, "restore", backend).returncode == 0
    assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()


def test_dts_packages_the_scheduler_host_json_and_restores_the_developers(app: Path) -> None:
    assert run(app, "select", "dts").returncode == 0

    packaged = json.loads((app / "host.json").read_text(encoding="utf-8"))
    original = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    assert durable(packaged)["storageProvider"] == {
        "type": "azureManaged",
        # The names of the app settings function-app.bicep sets in the `dts` variant.
        "connectionStringName": DTS_CONNECTION_SETTING,
    }
    assert durable(packaged)["hubName"] == f"%{DTS_TASK_HUB_SETTING}%"
    # The first extension bundle with the AzureManaged provider, up to the next major version.
    assert packaged["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.30.0, 5.0.0)",
    }
    # Everything else as the developer wrote it (concurrency, logging, routes, timeout).
    for section in (packaged, original):
        section.pop("extensionBundle")
        for key in ("storageProvider", "hubName"):
            durable(section).pop(key)
    assert packaged == original

    assert run(app, "restore", "dts").returncode == 0
    assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()
    assert not (app / KEPT).exists()


def test_a_package_that_failed_before_restore_is_undone_by_the_next_select(app: Path) -> None:
    assert run(app, "select", "dts").returncode == 0  # ... and packaging failed: no restore
    assert run(app, "select", "dts").returncode == 0
    assert run(app, "restore", "dts").returncode == 0
    assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()

    assert run(app, "select", "dts").returncode == 0
    assert run(app, "select", "storage").returncode == 0  # switched back: the developer's file
    assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()


def test_an_unknown_backend_stops_the_package_and_changes_nothing(app: Path) -> None:
    completed = run(app, "select", "DTS")
    assert completed.returncode != 0
    assert "DURABLE_BACKEND must be one of storage, dts" in completed.stderr
    assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()
    assert not (app / KEPT).exists()


def test_azure_yaml_runs_the_selection_around_packaging() -> None:
    text = (REPO_ROOT / "azure.yaml").read_text(encoding="utf-8")
    hooks = text.split("\n    hooks:\n", 1)[1]
    before, after = hooks.split("      postpackage:\n", 1)
    prepackage = before.split("      prepackage:\n", 1)[1]
    for block, action in ((prepackage, "select"), (after, "restore")):
        runs = [line.strip() for line in block.splitlines() if line.strip().startswith("run:")]
        assert len(runs) == 2, block  # posix and windows
        assert all(f"scripts/select_host_json.py {action}" in run for run in runs)
    for ignore in (".funcignore", ".gitignore"):
        lines = (REPO_ROOT / ignore).read_text(encoding="utf-8").splitlines()
        assert KEPT in lines, ignore


def posix_hook(name: str) -> str:
    """The `run:` line azd runs in sh for the api service's hook `name`."""
    text = (REPO_ROOT / "azure.yaml").read_text(encoding="utf-8")
    block = text.split(f"      {name}:\n        posix:\n", 1)[1]
    run = next(line for line in block.splitlines() if line.strip().startswith("run:"))
    return run.strip().removeprefix("run:").strip()


def run_hook(app: Path, name: str, environment: dict[str, str]) -> tuple[int, str]:
    """The hook as azd runs it: sh in the service's folder, the environment's values exported;
    its exit code and what it wrote on stderr."""
    completed = subprocess.run(
        ["/bin/sh", "-c", posix_hook(name)],
        cwd=app,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return completed.returncode, completed.stderr


def test_the_posix_hooks_switch_and_restore_as_azd_runs_them(app: Path) -> None:
    (app / "scripts").mkdir()
    (app / "scripts" / SCRIPT.name).write_bytes(SCRIPT.read_bytes())
    assert run_hook(app, "prepackage", {"DURABLE_BACKEND": "dts"})[0] == 0
    packaged = json.loads((app / "host.json").read_text(encoding="utf-8"))
    assert durable(packaged)["storageProvider"]["type"] == "azureManaged"
    assert run_hook(app, "postpackage", {"DURABLE_BACKEND": "dts"})[0] == 0
    assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()


def test_a_backend_the_infrastructure_was_not_provisioned_for_is_refused(app: Path) -> None:
    """`azd env set DURABLE_BACKEND dts` then `azd deploy` without provisioning: no scheduler,
    no settings yet. And the way back: storage asked for, dts still provisioned."""
    (app / "scripts").mkdir()
    (app / "scripts" / SCRIPT.name).write_bytes(SCRIPT.read_bytes())
    for asked, provisioned in (("dts", "storage"), ("storage", "dts"), ("", "dts")):
        code, stderr = run_hook(
            app,
            "prepackage",
            {"DURABLE_BACKEND": asked, "DURABLE_BACKEND_PROVISIONED": provisioned},
        )
        assert code != 0, (asked, provisioned)
        assert f"the infrastructure was provisioned for {provisioned}" in stderr
        assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()
        assert not (app / KEPT).exists()
    for same in ("dts", "storage"):
        environment = {"DURABLE_BACKEND": same, "DURABLE_BACKEND_PROVISIONED": same}
        assert run_hook(app, "prepackage", environment)[0] == 0
        assert run_hook(app, "postpackage", environment)[0] == 0
        assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()


def test_the_default_backend_runs_no_python_at_all(app: Path) -> None:
    """With DURABLE_BACKEND unset or `storage`, the hooks do not run the script (it is not even
    in this folder: running it would fail), so the deploying machine needs no Python."""
    for environment in (
        {},
        {"DURABLE_BACKEND": "storage"},
        {"DURABLE_BACKEND": "storage", "DURABLE_BACKEND_PROVISIONED": "storage"},
    ):
        for hook in ("prepackage", "postpackage"):
            assert run_hook(app, hook, environment) == (0, "")
            assert (app / "host.json").read_bytes() == HOST_JSON.read_bytes()
