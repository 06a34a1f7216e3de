"""Choosing the key-encryption key from the app settings."""

from scheduling.sealing.envelope import KeyWrapper, Sealer
from scheduling.sealing.errors import SealingNotConfigured
from storage.sealing.key_vault import SEALING_KEY_VAULT_KEY_URL, KeyVaultKeyWrapper
from storage.sealing.local_keys import KEY_ID_PREFIX, SEALING_KEYS, LocalKeyWrapper


class _KeyVaultWithLocalKeys:
    """Key Vault for new records; SEALING_KEYS still opens records sealed before the move."""

    def __init__(self, key_vault: KeyVaultKeyWrapper, local: LocalKeyWrapper) -> None:
        self._key_vault = key_vault
        self._local = local

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return self._key_vault.wrap(data_key)

    def holds(self, key_id: str) -> bool:
        if key_id.startswith(KEY_ID_PREFIX):
            return self._local.holds(key_id)
        return self._key_vault.holds(key_id)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        if key_id.startswith(KEY_ID_PREFIX):
            return self._local.unwrap(key_id, wrapped)
        return self._key_vault.unwrap(key_id, wrapped)


def sealer_from_settings(
    *, sealing_keys: str, key_vault_key_url: str, managed_identity_client_id: str | None
) -> Sealer:
    """A Sealer on the Key Vault key when SEALING_KEY_VAULT_KEY_URL is set, else on SEALING_KEYS.

    With both set, new records are sealed with Key Vault and the local keys only unwrap the
    records sealed with them before: remove SEALING_KEYS once none of those remain.
    """
    local = LocalKeyWrapper.from_setting(sealing_keys) if sealing_keys.strip() else None
    if not key_vault_key_url.strip():
        if local is None:
            raise SealingNotConfigured(
                f"no key-encryption key: set {SEALING_KEY_VAULT_KEY_URL} (a Key Vault key id "
                f"without version) or, for development, {SEALING_KEYS}"
            )
        return Sealer(local)
    # Imported here: azure.identity is heavy and only needed in this configuration.
    from azure.identity import DefaultAzureCredential

    # Passing None would hide AZURE_CLIENT_ID from the credential: only pass a real id.
    options = {"managed_identity_client_id": managed_identity_client_id}
    credential = DefaultAzureCredential(**(options if managed_identity_client_id else {}))
    key_vault = KeyVaultKeyWrapper(key_vault_key_url, credential)
    wrapper: KeyWrapper = key_vault if local is None else _KeyVaultWithLocalKeys(key_vault, local)
    return Sealer(wrapper)
