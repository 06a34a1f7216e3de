"""Host zone files that are wrong on purpose: a process that read them (PYTHONTZPATH, or the
host's /usr/share/zoneinfo before the tzdata package) would put Vancouver in Tokyo's time."""

from importlib import resources
from pathlib import Path

# zone -> the zone whose data its wrong file holds
WRONG_ZONES = {"America/Vancouver": "Asia/Tokyo", "Europe/London": "Pacific/Kiritimati"}


def wrong_zone_files(directory: Path) -> Path:
    """A TZPATH directory whose files for WRONG_ZONES hold other zones' data."""
    for name, impostor in WRONG_ZONES.items():
        target = directory.joinpath(*name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        source = resources.files("tzdata.zoneinfo").joinpath(*impostor.split("/"))
        target.write_bytes(source.read_bytes())
    return directory
