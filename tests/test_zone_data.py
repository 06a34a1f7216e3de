"""Every zone comes from the pinned tzdata package, never from the host's files: in the app's
process (function_app.py), in the tests, and, with host files made wrong on purpose, in a new
process that imports the app (the local durable host's is tests/live)."""

import json
import os
import subprocess
import sys
import zoneinfo
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path

import tzdata

from scheduling.zone_data import TZDATA_VERSION
from tests.support.recurrence_oracle import offset_changes
from tests.support.zone_files import WRONG_ZONES, wrong_zone_files

REPO_ROOT = Path(__file__).resolve().parents[1]
SPAN = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))


def test_no_host_directory_is_searched() -> None:
    assert zoneinfo.TZPATH == ()


def test_every_zone_changes_offset_as_the_tzdata_package_says() -> None:
    # The host's data (2025b here) differs from the pin for 15 zones in 2026-2028: Vancouver,
    # Winnipeg, Edmonton, Casablanca, Havana, Chisinau, ...
    differing = []
    for name in sorted(zoneinfo.available_timezones()):
        with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as file:
            packaged = zoneinfo.ZoneInfo.from_file(file, key=name)
        if offset_changes(zoneinfo.ZoneInfo(name), *SPAN) != offset_changes(packaged, *SPAN):
            differing.append(name)
    assert differing == []
    assert len(zoneinfo.available_timezones()) > 500


def test_the_tzdata_version_in_use_is_the_pinned_one() -> None:
    pins = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    assert f"tzdata=={metadata.version('tzdata')}" in pins
    assert TZDATA_VERSION == tzdata.IANA_VERSION


def test_a_process_running_the_app_ignores_the_hosts_zone_files(tmp_path: Path) -> None:
    code = (
        "import json, zoneinfo, datetime, function_app\n"
        "from scheduling.recurrence import zone_of\n"
        "winter = datetime.datetime(2027, 1, 15, 12, tzinfo=datetime.UTC)\n"
        f"names = {sorted(WRONG_ZONES)!r}\n"
        "print(json.dumps({'tzpath': list(zoneinfo.TZPATH), 'offsets': {name: "
        "winter.astimezone(zone_of(name)).utcoffset().total_seconds() for name in names}}))\n"
    )
    environment = {**os.environ, "PYTHONTZPATH": str(wrong_zone_files(tmp_path))}
    answer = json.loads(
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    )
    assert answer == {
        "tzpath": [],
        # Vancouver stays on UTC-7 from November 2026; London is on GMT in January.
        "offsets": {"America/Vancouver": -7 * 3600.0, "Europe/London": 0.0},
    }


def test_the_wrong_files_would_be_read_without_the_pin(tmp_path: Path) -> None:
    # The check above can fail: a plain process takes PYTHONTZPATH's files first.
    code = (
        "import datetime, zoneinfo\n"
        "winter = datetime.datetime(2027, 1, 15, 12, tzinfo=datetime.UTC)\n"
        "print(winter.astimezone(zoneinfo.ZoneInfo('America/Vancouver')).utcoffset())\n"
    )
    environment = {**os.environ, "PYTHONTZPATH": str(wrong_zone_files(tmp_path))}
    shown = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, check=True, text=True
    ).stdout
    assert shown.strip() == "9:00:00"  # Tokyo's
