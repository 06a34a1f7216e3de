"""A keyed request fingerprint for Idempotency-Key records.

A plain SHA-256 of a request can be brute-forced offline by anyone who reads the stored
digest: guess the secret header, hash, compare. With an HMAC under a key the reader does not
have, the digest reveals nothing that can be checked offline.
"""

import base64
import binascii
import hashlib
import hmac

from scheduling.sealing.errors import SealingNotConfigured

REQUEST_FINGERPRINT_KEY = "REQUEST_FINGERPRINT_KEY"
MIN_FINGERPRINT_KEY_BYTES = 32


def request_fingerprint_hmac(key: bytes, canonical: bytes) -> str:
    """HMAC-SHA256 of the canonical request, in hex."""
    if len(key) < MIN_FINGERPRINT_KEY_BYTES:
        raise ValueError(f"a fingerprint key is at least {MIN_FINGERPRINT_KEY_BYTES} bytes")
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def parse_fingerprint_key(value: str) -> bytes:
    """The key in the REQUEST_FINGERPRINT_KEY setting (base64 of at least 32 bytes)."""
    hint = "set it to base64 of 32 random bytes (`openssl rand -base64 32`)"
    if not value.strip():
        raise SealingNotConfigured(f"{REQUEST_FINGERPRINT_KEY} is not set: {hint}")
    try:
        key = base64.b64decode(value.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SealingNotConfigured(
            f"{REQUEST_FINGERPRINT_KEY} is not valid base64: {hint}"
        ) from None
    if len(key) < MIN_FINGERPRINT_KEY_BYTES:
        raise SealingNotConfigured(
            f"{REQUEST_FINGERPRINT_KEY} is {len(key)} bytes, fewer than "
            f"{MIN_FINGERPRINT_KEY_BYTES}: {hint}"
        )
    return key
