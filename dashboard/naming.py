"""How the dashboard names a job wherever it shows one: its labels beside its id.

A job's labels (`tenant=acme`, issue 24) are the caller's own names for it, kept in clear: they
are shown as `key=value` chips beside the id's short form. A job without labels is named by
its kind instead, and an http.call by its target's host, which its `destination` already
shows in clear (the method and origin). Nothing else of the payload is shown: it is sealed,
and a URL's path can itself be a secret (Slack and Discord webhook URLs are).
"""

from collections.abc import Mapping
from dataclasses import dataclass

# A UUID's first group: enough to tell a page's jobs apart; the full id is on the job's page.
SHORT_ID_CHARS = 8
# The API allows 10 labels of at most 63 + 63 characters (scheduling/labels.py); a record
# altered in storage, or written under another rule, is shown no longer than that.
MAX_CHIPS = 10
MAX_CHIP_CHARS = 127


@dataclass(frozen=True)
class JobName:
    transaction_id: str
    short_id: str
    chips: list[str]  # `key=value`, in the job's own order
    kind: str | None  # shown only when the job has no labels
    host: str | None  # an http.call's target host (and port), from its destination


def job_name(
    transaction_id: str,
    prompt_type: str | None,
    destination: str | None,
    labels: Mapping[str, str] | None,
) -> JobName:
    chips = [_chip(key, value) for key, value in list((labels or {}).items())[:MAX_CHIPS]]
    return JobName(
        transaction_id=transaction_id,
        short_id=short_id(transaction_id),
        chips=chips,
        kind=None if chips else prompt_type,
        host=None if chips else host_of(destination),
    )


def short_id(transaction_id: str) -> str:
    if len(transaction_id) <= SHORT_ID_CHARS + 1:
        return transaction_id
    return transaction_id[:SHORT_ID_CHARS] + "…"


def host_of(destination: str | None) -> str | None:
    """`hooks.example.com:8443` of a destination `POST https://hooks.example.com:8443`."""
    if not destination:
        return None
    _, _, origin = destination.rpartition(" ")
    _, separator, host = origin.partition("://")
    return host if separator and host else None


def _chip(key: str, value: str) -> str:
    text = f"{key}={value}"
    return text if len(text) <= MAX_CHIP_CHARS else text[: MAX_CHIP_CHARS - 1] + "…"
