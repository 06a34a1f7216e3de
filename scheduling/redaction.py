"""A URL as it may be shown: its origin, and nothing of what follows.

The rule a job's own target has (its `destination`): a path, a query or a fragment carries
credentials under any name (`?t=`, `?jwt=`, a token as a path segment, a URL nested in a
parameter), so no part of them is shown. Used for the URLs a job gave (its callbacks) and
those a target sends back (a redirect's `Location`). One pass over at most MAX_URL_CHARS
characters, whatever the input.
"""

REDACTED = "[redacted]"
# Longer URLs are cut first; only the authority is read, and it comes first.
MAX_URL_CHARS = 4096


def redact_url(url: str) -> str:
    """`scheme://host[:port]` (no userinfo), then `/[redacted]` if anything else follows; a
    relative reference is `[redacted]`, or "" when it is empty or "/"."""
    text = url[:MAX_URL_CHARS]
    scheme, separator, rest = text.partition("://")
    if not separator:
        return "" if text in ("", "/") else REDACTED
    authority_end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if 0 <= found < authority_end:
            authority_end = found
    host = rest[:authority_end].rpartition("@")[2]  # userinfo is never shown
    tail = rest[authority_end:]
    shown = f"{scheme}://{host}"
    return shown if tail in ("", "/") else f"{shown}/{REDACTED}"
