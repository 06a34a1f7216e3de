"""Idempotency keys: the same key and request always mean the same job."""

import hashlib
import json
import re
import uuid
from typing import Any

# Fixed forever: changing it would give every key a new transaction id.
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0e6c1e-2f4a-4a8e-9d3c-7f1e2a9b6c40")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class InvalidIdempotencyKey(ValueError):
    pass


def transaction_id_for(key: str) -> str:
    """The transaction id a key stands for: the same key, the same id, in every process."""
    if not IDEMPOTENCY_KEY.match(key):
        raise InvalidIdempotencyKey(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces)"
        )
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, key))


def request_fingerprint(job_fields: dict[str, Any]) -> str:
    """A digest of what was asked for (normalised), to tell a retry from a conflicting reuse."""
    canonical = json.dumps(job_fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
