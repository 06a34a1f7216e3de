"""What a shell user typed, as the parts of a request: @files, KEY=VALUE pairs, when, where.

Each refusal is a click usage error naming the option at fault.
"""

import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import TypeAdapter, ValidationError

from scheduler_client.models import UtcDatetime

# A body given with @file (or @- for standard input) is read up to this size.
MAX_BODY_FILE_BYTES = 1 << 20
_INSTANT = TypeAdapter(UtcDatetime)


def text_or_file(value: str | None, what: str) -> str | None:
    """The option's text, or with @path the file's (@- standard input)."""
    if value is None or not value.startswith("@"):
        return value
    source = value[1:]
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_BODY_FILE_BYTES + 1)
        else:
            with Path(source).open("rb") as file:
                raw = file.read(MAX_BODY_FILE_BYTES + 1)
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {source}: {error.strerror}", param_hint=what
        ) from None
    if len(raw) > MAX_BODY_FILE_BYTES:
        raise click.BadParameter(f"larger than {MAX_BODY_FILE_BYTES} bytes", param_hint=what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise click.BadParameter("not UTF-8 text", param_hint=what) from None


def json_value(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise click.BadParameter(f"not JSON ({error})", param_hint=what) from None


def headers(values: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, colon, content = value.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(f"{value!r} is not 'Name: value'", param_hint="--header")
        headers[name.strip()] = content.strip()
    return headers


def labels(values: tuple[str, ...]) -> dict[str, str]:
    """--label KEY=VALUE options as a job's labels (the API checks their form)."""
    labels: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = text
    return labels


def fields(values: tuple[str, ...]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for value in values:
        name, equals, content = value.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--field")
        try:
            fields[name] = json.loads(content)
        except ValueError:
            fields[name] = content
    return fields


def one_of(given: dict[str, Any], what: str) -> tuple[str, Any]:
    chosen = [(name, value) for name, value in given.items() if value not in (None, ())]
    if len(chosen) != 1:
        names = ", ".join(given)
        raise click.UsageError(f"give exactly one of {names} ({what})")
    return chosen[0]


def when(after: str | None, at: str | None, cron: str | None, tz: str | None) -> dict[str, Any]:
    name, value = one_of({"--in": after, "--at": at, "--cron": cron}, "when it runs")
    if name == "--in":
        if tz:
            raise click.UsageError("--tz is for --at and --cron: --in counts from now")
        # The server adds it to its own clock when it accepts the job: no clock skew here.
        return {"delay": value}
    if name == "--cron":
        return {"cron": value, **({"timezone": tz} if tz else {})}
    if tz:
        # A wall time in a zone: 09:00 wherever the zone's clocks say 09:00.
        return {"exec_local": value, "timezone": tz}
    try:
        return {"exec_at": _INSTANT.validate_python(value)}
    except ValidationError:
        raise click.BadParameter(
            "an RFC 3339 instant with an offset (2026-12-01T09:30:00Z, …+02:00), or a local "
            "time with --tz ZONE",
            param_hint="--at",
        ) from None


def target(methods: dict[str, str | None], request: tuple[str, str] | None) -> tuple[str, str]:
    given: dict[str, Any] = {f"--{method.lower()}": url for method, url in methods.items()}
    given["--request"] = request or None
    name, value = one_of(given, "the URL to call")
    if name == "--request":
        method, url = value
        return method.upper(), url
    return name[2:].upper(), value
