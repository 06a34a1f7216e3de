"""A job record to test the dashboard's pure parts with: one pending log.append, its payload
sealed (with bytes no key opens: nothing here reads it)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from scheduling.job_record import JobRecord
from storage.sealing import SealedPayload

DUE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SEALED = SealedPayload(
    alg="A256GCM", key_id="local:k", wrapped_key="d2s=", nonce="bm9uY2U=", ciphertext="Y3Q="
)


def job_record(**changes: Any) -> JobRecord:
    """A pending job due at DUE, accepted an hour before; `changes` override its fields."""
    base = JobRecord(
        transaction_id="3f0c2a57-8d4e-4c1b-9a6f-0b1c2d3e4f50",
        generation="g1",
        state="pending",
        prompt_type="log.append",
        exec_at=DUE,
        accepted_at=DUE - timedelta(hours=1),
        updated_at=DUE - timedelta(hours=1),
        sealed_payload=SEALED,
    )
    return base.model_copy(update=changes)
