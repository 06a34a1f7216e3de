"""Hiding the values of secret HTTP headers and URL query parameters before anything is
logged or shown."""

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "authentication",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-functions-key",
        "ocp-apim-subscription-key",
        "x-auth-token",
        "x-goog-api-key",
        "private-token",
        "x-amz-security-token",
        "x-csrf-token",
        "x-xsrf-token",
    }
)
# Query parameters whose value is a credential: Functions' `code`, SAS `sig`, OAuth tokens...
SECRET_QUERY_PARAMETERS = frozenset(
    {
        "code",
        "sig",
        "signature",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "password",
        "client_secret",
    }
)
# One `name=value` of a query: after `?` or `&` (or `;`), up to the next separator or fragment.
_QUERY_PARAMETER = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#]*)=(?P<value>[^&;#]*)")

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


def redact_url(url: str) -> str:
    """`url` with the value of every secret query parameter (SECRET_QUERY_PARAMETERS, any
    case, percent-encoded names included) and a `user:password@` password replaced by
    "[redacted]"; every other character is kept as it was."""
    url = _redact_password(url)
    query_start = url.find("?")
    if query_start < 0:
        return url
    fragment_start = url.find("#", query_start)
    end = len(url) if fragment_start < 0 else fragment_start

    def hide(match: re.Match[str]) -> str:
        if _parameter_name(match["name"]) not in SECRET_QUERY_PARAMETERS or not match["value"]:
            return match[0]
        return f"{match['lead']}{match['name']}={REDACTED}"

    query = _QUERY_PARAMETER.sub(hide, url[query_start:end])
    return url[:query_start] + query + url[end:]


def _redact_password(url: str) -> str:
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    authority_start = scheme_end + 3
    authority_end = next(
        (
            index
            for index, char in enumerate(url[authority_start:], authority_start)
            if char in "/?#"
        ),
        len(url),
    )
    at = url.rfind("@", authority_start, authority_end)
    colon = url.find(":", authority_start, at)
    if at < 0 or colon < 0 or colon + 1 == at:
        return url
    return f"{url[: colon + 1]}{REDACTED}{url[at:]}"


def _parameter_name(raw: str) -> str:
    # `%6Bey` and `KEY` name the same parameter to most servers; `+` is a space in a query.
    return unquote_plus(raw).strip().lower()


def redact_fields(value: _Value, extra: Iterable[str] = ()) -> _Value:
    """A copy of a JSON-like value where any dict key or [name, value] pair naming a secret
    header, at any depth, has its value replaced by "[redacted]", and any string under a key
    named `url` has its secret query parameters redacted (`redact_url`)."""
    return cast(_Value, _redact(value, secret_header_names(extra)))


def _redact(value: Any, secret: frozenset[str]) -> Any:
    if isinstance(value, Mapping):
        return {key: _redact_item(key, item, secret) for key, item in value.items()}
    if isinstance(value, list | tuple):
        # Headers are also logged as pairs, e.g. httpx's `headers.multi_items()`.
        if len(value) == 2 and _is_secret(value[0], secret) and isinstance(value[1], str):
            items = [value[0], REDACTED]
        else:
            items = [_redact(item, secret) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _redact_item(key: object, item: Any, secret: frozenset[str]) -> Any:
    if _is_secret(key, secret):
        return REDACTED
    if isinstance(key, str) and key.strip().lower() == "url" and isinstance(item, str):
        return redact_url(item)
    return _redact(item, secret)
