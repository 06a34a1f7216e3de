"""The sealed-payload envelope: what a job record carries instead of its payload in clear.

The scheme (AES-256-GCM data key per record, wrapped by a key-encryption key) is pure;
the key wrappers that reach Key Vault or read app settings live in `storage.sealing`.
"""

from scheduling.sealing.envelope import KeyWrapper, SealedPayload, Sealer
from scheduling.sealing.errors import SealingError, SealingNotConfigured, SealingUnavailable

__all__ = [
    "KeyWrapper",
    "SealedPayload",
    "Sealer",
    "SealingError",
    "SealingNotConfigured",
    "SealingUnavailable",
]
