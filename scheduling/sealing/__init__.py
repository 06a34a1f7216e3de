"""Sealing job payloads: envelope encryption under a key-encryption key (KEK).

Each payload gets its own random data key (AES-256-GCM); the data key is stored wrapped by
the KEK: an Azure Key Vault key in Azure (the key never leaves the vault), local keys from
SEALING_KEYS in development and tests. The wrapping key's id is stored with each payload,
so a KEK can be rotated while older payloads stay readable.
"""

from scheduling.sealing.envelope import (
    KeyWrapper,
    SealedPayload,
    Sealer,
    SealingError,
    SealingNotConfigured,
)
from scheduling.sealing.factory import sealer_from_settings

__all__ = [
    "KeyWrapper",
    "SealedPayload",
    "Sealer",
    "SealingError",
    "SealingNotConfigured",
    "sealer_from_settings",
]
