"""A URL as it may be shown: its origin, no path, and no secret query value.

Used for the URLs a target sends back (a redirect's `Location`). It runs in one pass over
at most MAX_URL_CHARS characters, whatever the input: no scan restarts anywhere.
"""

import re
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
# Longer URLs are cut first; no redirect target a person reads is longer.
MAX_URL_CHARS = 4096
# A query parameter whose name contains any of these carries a credential often enough that
# its value is never shown: API keys, tokens, secrets, signatures (SAS `sig`, AWS
# `X-Amz-Signature`), passwords, auth codes, credentials, sessions, and cloud SDKs' own.
_SECRET_NAME = re.compile(r"key|token|secret|sig|pass|auth|cred|code|session|x-amz-|x-goog-")
_MAX_NAME_CHARS = 256


def redact_url(url: str) -> str:
    """`scheme://host[:port]` (nothing, for a relative URL), then `/[redacted]` for any path
    (paths carry tokens too), then the query with the value of every parameter whose name
    looks secret replaced; no userinfo, no fragment."""
    text = url[:MAX_URL_CHARS]
    scheme, separator, rest = text.partition("://")
    if separator:
        authority_end = len(rest)
        for mark in "/?#":
            found = rest.find(mark)
            if 0 <= found < authority_end:
                authority_end = found
        host = rest[:authority_end].rpartition("@")[2]  # userinfo is never shown
        shown, tail = f"{scheme}://{host}", rest[authority_end:]
    else:
        shown, tail = "", text  # a relative reference: a path and a query
    path, _, query = tail.partition("#")[0].partition("?")
    if path not in ("", "/"):
        shown += f"/{REDACTED}"
    if query:
        shown += "?" + "&".join(_shown_parameter(item) for item in query.split("&"))
    return shown


def _shown_parameter(item: str) -> str:
    name, separator, value = item.partition("=")
    if not separator or not value:
        return item
    readable = unquote_plus(name[:_MAX_NAME_CHARS]).strip().lower()
    if len(name) > _MAX_NAME_CHARS or _SECRET_NAME.search(readable):
        return f"{name[:_MAX_NAME_CHARS]}={REDACTED}"
    return item
