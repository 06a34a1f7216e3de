"""Hiding the values of secret HTTP headers before anything is logged or shown."""

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-functions-key"}
)

_Value = TypeVar("_Value")


def secret_header_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The built-in secret header names plus `extra` (e.g. REDACTED_HEADERS), lower-cased."""
    return SECRET_HEADERS | {name.strip().lower() for name in extra if name.strip()}


def _is_secret(name: object, secret: frozenset[str]) -> bool:
    return isinstance(name, str) and name.strip().lower() in secret


def redact_headers(headers: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """A copy of `headers` with every secret header's value replaced by "[redacted]"."""
    secret = secret_header_names(extra)
    return {
        name: REDACTED if _is_secret(name, secret) else value for name, value in headers.items()
    }


def redact_fields(value: _Value, extra: Iterable[str] = ()) -> _Value:
    """A copy of a JSON-like value where any dict key or [name, value] pair naming a secret
    header, at any depth, has its value replaced by "[redacted]"."""
    return cast(_Value, _redact(value, secret_header_names(extra)))


def _redact(value: Any, secret: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _is_secret(key, secret) else _redact(item, secret)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        # Headers are also logged as pairs, e.g. httpx's `headers.multi_items()`.
        if len(value) == 2 and _is_secret(value[0], secret) and isinstance(value[1], str):
            items = [value[0], REDACTED]
        else:
            items = [_redact(item, secret) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value
