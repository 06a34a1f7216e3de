"""checkov's Bicep policies pass over infra/, and every skipped policy says why.

checkov runs from its own venv (.venv-tools/checkov, installed by scripts/test.sh from
requirements-tools.txt) as a subprocess, so the suite's in-process network guard does
not cover it. It is kept offline explicitly: a clean environment (no API key, no
proxy, a throw-away HOME), the flags that switch off its downloads and version
check, and checkov_offline.py, which refuses and reports any non-loopback socket use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .bicep_model import INFRA_DIR, REPO_ROOT
from .checkov_offline import BLOCKED_MARKER

CHECKOV_VENV = REPO_ROOT / ".venv-tools" / "checkov"
CHECKOV_PYTHON = CHECKOV_VENV / "bin" / "python"
# checkov's temporary files, kept between runs: its Bicep parser caches its grammar tables
# there, which takes seconds to rebuild.
CHECKOV_TMP = CHECKOV_VENV / "tmp"
LAUNCHER = Path(__file__).with_name("checkov_offline.py")
TIMEOUT_SECONDS = 300


def offline_environment(home: Path) -> dict[str, str]:
    """Only what checkov needs, plus every switch that keeps it from going online."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),  # a throw-away home: no ~/.bridgecrew credentials are found
        "TMPDIR": str(CHECKOV_TMP),
        "LANG": "C.UTF-8",
        "BC_SKIP_MAPPING": "TRUE",  # no policy-mapping download from the platform
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no PyPI version check at import
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "CKV_GITHUB_CONFIG_FETCH_DATA": "false",
        "CKV_GITLAB_CONFIG_FETCH_DATA": "false",
        "CKV_VALIDATE_SECRETS": "false",
        "CHECKOV_PARALLELIZATION_TYPE": "none",  # one process, so the launcher's hook sees all
        "LOG_LEVEL": "WARNING",
    }


def run_checkov(home: Path) -> tuple[dict[str, Any], str]:
    if not CHECKOV_PYTHON.exists():
        pytest.fail(
            f"checkov is not installed ({CHECKOV_PYTHON} is missing): run scripts/test.sh, "
            "which installs it into .venv-tools/checkov from requirements-tools.txt"
        )
    CHECKOV_TMP.mkdir(exist_ok=True)
    command = [
        str(CHECKOV_PYTHON),
        "-I",  # isolated: ignore PYTHON* variables and user site-packages
        str(LAUNCHER),
        "--directory",
        str(INFRA_DIR.relative_to(REPO_ROOT)),
        "--framework",
        "bicep",
        "--compact",
        "--skip-download",
        "--skip-results-upload",
        "--output",
        "json",
    ]
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=offline_environment(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    blocked = [line for line in completed.stderr.splitlines() if BLOCKED_MARKER in line]
    assert not blocked, "checkov tried to reach the network:\n" + "\n".join(blocked)
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov exited {completed.returncode} without a JSON report\n"
            f"stdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"
        )
    if isinstance(report, list):  # one report per framework; only bicep was asked for
        report = next(r for r in report if r.get("check_type") == "bicep")
    assert isinstance(report, dict)
    return report, completed.stderr


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    report, stderr = run_checkov(tmp_path_factory.mktemp("checkov-home"))
    if stderr.strip():
        sys.stderr.write(stderr)
    return report


def describe(check: dict[str, Any]) -> str:
    first, last = check.get("file_line_range") or (0, 0)
    return (
        f"{check['check_id']} {check['check_name']}\n"
        f"    {check['resource']} in infra{check['file_path']}:{first}-{last}"
    )


def test_checkov_scanned_the_bicep(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    assert summary["resource_count"] > 0, f"checkov found no Bicep resources: {summary}"
    assert summary["passed"] > 0
    assert summary["parsing_errors"] == 0, checkov_report["results"].get("parsing_errors")


def test_checkov_finds_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    failed = checkov_report["results"]["failed_checks"]
    assert not failed, f"{len(failed)} checkov check(s) failed:\n" + "\n".join(
        describe(check) for check in failed
    )


def test_every_skipped_check_is_justified(checkov_report: dict[str, Any]) -> None:
    unjustified = []
    for check in checkov_report["results"]["skipped_checks"]:
        reason = str(check.get("check_result", {}).get("suppress_comment") or "").strip()
        if len(reason) < 20 or reason == "No comment provided":
            unjustified.append(f"{describe(check)}\n    reason: {reason!r}")
    assert not unjustified, (
        "skip a checkov check only with a reason: `// checkov:skip=CKV_ID: why`\n"
        + "\n".join(unjustified)
    )
