"""Sealing job payloads: envelope encryption under a key-encryption key.

A payload (URL, headers, body: possibly credentials) is encrypted with a fresh AES-256-GCM
data key bound to associated data (the record it belongs to); the data key is wrapped by a
key-encryption key in Azure Key Vault, or by a local key from the app settings in development.
"""

from scheduling.sealing.envelope import KeyWrapper, SealedPayload, Sealer
from scheduling.sealing.errors import SealingError, SealingNotConfigured, SealingUnavailable
from storage.sealing.factory import sealer_from_settings
from storage.sealing.key_vault import SEALING_KEY_VAULT_KEY_URL, KeyVaultKeyWrapper
from storage.sealing.local_keys import SEALING_KEYS, LocalKeyWrapper

__all__ = [
    "SEALING_KEYS",
    "SEALING_KEY_VAULT_KEY_URL",
    "KeyVaultKeyWrapper",
    "KeyWrapper",
    "LocalKeyWrapper",
    "SealedPayload",
    "Sealer",
    "SealingError",
    "SealingNotConfigured",
    "SealingUnavailable",
    "sealer_from_settings",
]
