"""Time zone data from the pinned `tzdata` package only, never from the host's files.

`zoneinfo` searches the TZPATH directories (the host's /usr/share/zoneinfo, or PYTHONTZPATH)
before the `tzdata` package, so the same cron fired at other instants on another image: the
host's data follows the image's updates, the pin follows requirements.txt. Importing this
module empties TZPATH, so every zone comes from `tzdata`. It must happen before the first zone
is loaded (zoneinfo caches each zone by name); the cache is cleared too, in case one was.
function_app.py imports it first; scheduling/recurrence.py imports it for every other caller.
"""

import zoneinfo

import tzdata

zoneinfo.reset_tzpath([])
zoneinfo.ZoneInfo.clear_cache()

# The IANA release of the zone data in use (e.g. 2026f); the package's own version is 2026.6.
TZDATA_VERSION: str = tzdata.IANA_VERSION
