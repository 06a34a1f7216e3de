"""Where the API is and which key to send: flags, environment, or a local host's settings.

`scripts/run-local.sh` makes keys for each machine and keeps them in the checkout's
git-ignored local.settings.json. When the URL is on this machine (a loopback address or
`localhost`) and no key was given, the function key (or the webhook secret, for `receive`)
is read from the nearest local.settings.json in the working directory or one above it.
"""

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

URL_ENV = "SCHEDULER_URL"
KEY_ENV = "SCHEDULER_KEY"
WEBHOOK_SECRET_ENV = "SCHEDULER_WEBHOOK_SECRET"  # noqa: S105 (a variable's name)
# Where scripts/run-local.sh serves the app.
DEFAULT_URL = "http://127.0.0.1:7071"
LOCAL_SETTINGS = "local.settings.json"
LOCAL_FUNCTION_KEY = "LOCAL_HOST_FUNCTION_KEY"
LOCAL_WEBHOOK_SECRETS = "WEBHOOK_SIGNING_SECRETS"
# A settings file is a few kilobytes; anything far larger is not one.
_MAX_SETTINGS_BYTES = 1 << 20
_SECRET_SEPARATOR = re.compile(r"[\s,]+")


class ConfigError(ValueError):
    """The configuration cannot work (a usage error: nothing was sent)."""


@dataclass(frozen=True)
class Connection:
    """The API's base URL (without `/api`) and the key to send; `key_source` says where the
    key came from, for a note (never the key itself)."""

    base_url: str
    key: str | None
    key_source: str | None


def api_base_url(value: str) -> str:
    """`value` as a base URL: http(s), a host, no query; a trailing `/` or `/api` dropped."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the URL {text!r} is not http(s)://host[:port]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            "the URL must not carry a query, fragment or credentials: give the key with "
            f"--key or {KEY_ENV}"
        )
    path = parts.path.rstrip("/")
    path = path.removesuffix("/api")
    return f"{parts.scheme}://{parts.netloc}{path}"


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def find_local_settings(start: Path) -> Path | None:
    """The nearest local.settings.json in `start` or a directory above it."""
    for directory in (start, *start.parents):
        candidate = directory / LOCAL_SETTINGS
        if candidate.is_file():
            return candidate
    return None


def local_setting(path: Path, name: str) -> str | None:
    """One value of a local.settings.json (`Values.<name>`), or None if it has none."""
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_SETTINGS_BYTES + 1)
    except OSError:
        return None
    if len(raw) > _MAX_SETTINGS_BYTES:
        return None
    try:
        values = json.loads(raw).get("Values", {})
    except (ValueError, AttributeError):
        return None
    value = values.get(name) if isinstance(values, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def connection(
    url: str | None,
    key: str | None,
    environ: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> Connection:
    """The connection from flags, else the environment, else the defaults; on a loopback
    URL without a key, the local host's function key from local.settings.json."""
    base_url = api_base_url(url or environ.get(URL_ENV) or DEFAULT_URL)
    given = key if key is not None else environ.get(KEY_ENV)
    if given:
        return Connection(base_url, given, None)
    if is_loopback(base_url):
        settings = find_local_settings(cwd or Path.cwd())
        if settings is not None:
            local_key = local_setting(settings, LOCAL_FUNCTION_KEY)
            if local_key:
                return Connection(base_url, local_key, str(settings))
    return Connection(base_url, None, None)


def webhook_secrets(
    given: tuple[str, ...], environ: Mapping[str, str] = os.environ, cwd: Path | None = None
) -> tuple[list[str], str | None]:
    """The secrets to verify deliveries with, and where they came from (None: the flags).

    Each of `given` and the variable may hold several, separated by spaces or commas, as
    WEBHOOK_SIGNING_SECRETS does while a secret is being rotated."""
    if given:
        return _split(" ".join(given)), None
    from_env = environ.get(WEBHOOK_SECRET_ENV, "").strip()
    if from_env:
        return _split(from_env), WEBHOOK_SECRET_ENV
    settings = find_local_settings(cwd or Path.cwd())
    if settings is not None:
        local = local_setting(settings, LOCAL_WEBHOOK_SECRETS)
        if local:
            return _split(local), str(settings)
    return [], None


def _split(secrets: str) -> list[str]:
    return [secret for secret in _SECRET_SEPARATOR.split(secrets.strip()) if secret]
