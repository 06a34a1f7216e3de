"""Idempotency keys: the same key and request always mean the same job."""

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from typing import Any

# Fixed forever: changing it would give every key a new transaction id.
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0e6c1e-2f4a-4a8e-9d3c-7f1e2a9b6c40")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
MIN_FINGERPRINT_KEY_BYTES = 32


class InvalidIdempotencyKey(ValueError):
    pass


class FingerprintKeyMissing(ValueError):
    """REQUEST_FINGERPRINT_KEY is unset or unusable; the message never quotes it."""


def transaction_id_for(key: str) -> str:
    """The transaction id a key stands for: the same key, the same id, in every process."""
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidIdempotencyKey(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces)"
        )
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, key))


def fingerprint_key(setting: str) -> bytes:
    """The server key of REQUEST_FINGERPRINT_KEY: base64 of at least 32 bytes."""
    try:
        key = base64.b64decode(setting.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < MIN_FINGERPRINT_KEY_BYTES:
        raise FingerprintKeyMissing(
            "REQUEST_FINGERPRINT_KEY must be set to the base64 of at least "
            f"{MIN_FINGERPRINT_KEY_BYTES} random bytes (e.g. `openssl rand -base64 32`)"
        )
    return key


def request_fingerprint(job_fields: dict[str, Any], key: bytes) -> str:
    """A keyed digest of what was asked for (normalised), to tell a retry from a conflicting
    reuse. Keyed, so that whoever reads the stored digest cannot test guesses of a secret
    header offline.

    What was asked for, not what it resolved to: a `delay` is in it as the duration (in its
    one written form), so a retry of it later is the same request and gets the first
    answer's instant, while an `exec_at` naming that instant is another request.
    """
    canonical = json.dumps(job_fields, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
