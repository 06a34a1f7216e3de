"""Standard Webhooks signatures on what the scheduler sends, so a receiver can prove it came
from us: `webhook-id`, `webhook-timestamp` and `webhook-signature` (one `v1,<base64
HMAC-SHA256>` per secret, so a receiver keeps verifying while secrets rotate)."""

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime

from scheduling.timing import format_utc

KEY_PREFIX = "whsec_"
# The headers the scheduler sets: a payload may set none of them, in any casing.
RESERVED_HEADER_PREFIX = "webhook-"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# Secrets are listed separated by spaces or commas (the newest first, by convention).
_SEPARATORS = re.compile(r"[\s,]+")
# Enough for a rotation or two; a longer list is a mistake, and every request carries all.
MAX_SECRETS = 8
# HMAC-SHA256 keys shorter than this are guessable; the Standard Webhooks spec asks 24 to 64.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64 * 1024


class SigningNotConfigured(ValueError):
    """WEBHOOK_SIGNING_SECRETS cannot be used; the message never quotes it."""


def parse_secrets(text: str) -> tuple[bytes, ...]:
    """The keys of a `whsec_<base64>[ whsec_<base64>...]` setting (WEBHOOK_SIGNING_SECRETS).

    SigningNotConfigured names the entry at fault by its position, never by its value.
    """
    try:
        return _parse_secrets(text)
    except ValueError as error:
        raise SigningNotConfigured(f"WEBHOOK_SIGNING_SECRETS: {error}") from None


def _parse_secrets(text: str) -> tuple[bytes, ...]:
    entries = [
        entry for entry in _SEPARATORS.split(text[: MAX_SECRET_BYTES * MAX_SECRETS]) if entry
    ]
    if len(entries) > MAX_SECRETS:
        raise ValueError(f"at most {MAX_SECRETS} secrets, got {len(entries)}")
    keys = []
    for position, entry in enumerate(entries, start=1):
        if not entry.startswith(KEY_PREFIX):
            raise ValueError(f"secret {position} does not start with {KEY_PREFIX!r}")
        encoded = entry.removeprefix(KEY_PREFIX)
        try:
            # Padding is optional in the wild: the reference libraries add it.
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"secret {position} is not whsec_ followed by base64") from None
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(
                f"secret {position} is {len(key)} bytes; at least {MIN_SECRET_BYTES} are needed"
            )
        keys.append(key)
    return tuple(keys)


def message_id(*parts: str) -> str:
    """A stable `msg_` id: the same parts give the same id (a receiver de-duplicates on it),
    and it shows nothing of them."""
    digest = hashlib.sha256("\n".join(parts).encode()).digest()
    return "msg_" + base64.b32encode(digest[:20]).decode().lower()


def run_message_id(transaction_id: str, generation: str, exec_at: datetime) -> str:
    """The id of one run of a job: the same for every retry of the run, new for the next run
    of a recurring job and for a new generation (a replay, a resume, a PATCH)."""
    return message_id("run", transaction_id, generation, format_utc(exec_at))


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers for a request with `body`, sent at `timestamp` (Unix seconds); none
    when no key is configured."""
    if not keys:
        return {}
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signature(key, msg_id, timestamp, body) for key in keys),
    }
