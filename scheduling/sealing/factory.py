"""Which key-encryption key the settings choose."""

from scheduling.sealing.envelope import Sealer, SealingNotConfigured
from scheduling.sealing.local_keys import LocalKeyWrapper


def sealer_from_settings(
    *, sealing_keys: str, key_vault_key_url: str, managed_identity_client_id: str | None
) -> Sealer:
    """Key Vault when SEALING_KEY_VAULT_KEY_URL is set, else SEALING_KEYS."""
    if key_vault_key_url:
        from scheduling.sealing.key_vault import KeyVaultKeyWrapper

        return Sealer(
            KeyVaultKeyWrapper.with_identity(key_vault_key_url, managed_identity_client_id)
        )
    if sealing_keys.strip():
        return Sealer(LocalKeyWrapper.from_setting(sealing_keys))
    raise SealingNotConfigured(
        "no key seals job payloads: set SEALING_KEY_VAULT_KEY_URL (Azure Key Vault) "
        "or SEALING_KEYS (local development)"
    )
