"""A job log entry's fields as the timeline shows them: named values, not a JSON document.

An attempt's `outcome` entry leads with its gist (ok or failed, the HTTP status, the error
in one line, how long it took, the attempt), then what else it kept (response headers from
the allowlist, a body excerpt the job asked for) folded away. Other entries show each field
as a name and a value. Every value is capped: a field is the job's (or its target's) text.
"""

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduling.attempt_history import one_line

# At most this many fields an entry, and this many characters a value.
MAX_FIELDS = 40
MAX_VALUE_CHARS = 300


@dataclass(frozen=True)
class Shown:
    name: str
    value: str
    # A class the page styles by: "ok", "failed", or "" for plain text.
    tone: str = ""


@dataclass(frozen=True)
class EntryFields:
    lead: list[Shown] = field(default_factory=list)  # shown on the entry's line
    more: list[Shown] = field(default_factory=list)  # folded under "more"
    left_out: int = 0  # fields past MAX_FIELDS, not shown


def entry_fields(kind: str, fields: Mapping[str, Any]) -> EntryFields:
    if kind == "outcome":
        return _outcome(fields)
    return _plain(fields, [])


def _outcome(fields: Mapping[str, Any]) -> EntryFields:
    lead = []
    if "ok" in fields:
        ok = fields["ok"] is True
        lead.append(Shown("result", "ok" if ok else "failed", "ok" if ok else "failed"))
    if isinstance(fields.get("status_code"), int):
        lead.append(Shown("HTTP status", str(fields["status_code"])))
    if isinstance(fields.get("error"), str) and fields["error"]:
        lead.append(Shown("error", one_line(fields["error"])))
    if _is_number(fields.get("elapsed_ms")):
        lead.append(Shown("took", format_ms(fields["elapsed_ms"])))
    if _is_number(fields.get("retry_after_seconds")):
        lead.append(Shown("Retry-After", f"{fields['retry_after_seconds']:g} s"))
    if isinstance(fields.get("attempt"), int):
        lead.append(Shown("attempt", str(fields["attempt"])))
    shown = {"ok", "status_code", "error", "elapsed_ms", "retry_after_seconds", "attempt"}
    # Nothing to say: no headers kept, no excerpt asked for, a flag at its default.
    quiet = {"headers": {}, "body_excerpt": "", "body_truncated": False, "retryable": False}
    rest = {
        name: value
        for name, value in fields.items()
        if name not in shown and not (name in quiet and value == quiet[name])
    }
    headers = rest.pop("headers", None)
    more = []
    if isinstance(headers, dict):
        more += [Shown(f"header {name}", _text(value)) for name, value in headers.items()]
    elif headers is not None:
        rest["headers"] = headers
    plain = _plain(rest, more)
    return EntryFields(lead=lead, more=plain.lead, left_out=plain.left_out)


def _plain(fields: Mapping[str, Any], before: list[Shown]) -> EntryFields:
    room = max(MAX_FIELDS - len(before), 0)
    kept = list(itertools.islice(fields.items(), room))
    shown = [*before[:MAX_FIELDS], *(Shown(str(name), _text(value)) for name, value in kept)]
    return EntryFields(lead=shown, left_out=len(before) + len(fields) - len(shown))


def _text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif _is_number(value):
        text = f"{value:g}" if isinstance(value, float) else str(value)
    else:
        # A nested value (a log.append's own fields may hold any JSON) stays JSON, cut short.
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_ms(value: float | None) -> str:
    """Milliseconds as the pages show them: `850 ms`, `2.50 s`; `—` when unknown."""
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if abs(value) >= 1000 else f"{value:.0f} ms"
