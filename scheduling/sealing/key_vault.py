"""An Azure Key Vault key as the key-encryption key: keys never leave the vault."""

import threading
from typing import TYPE_CHECKING, Any

from scheduling.sealing.envelope import SealingError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.keyvault.keys.crypto import CryptographyClient


class KeyVaultKeyWrapper:
    """Wraps with RSA-OAEP-256 under the key's current version; unwraps with the version
    recorded, so a rotated key (a new version) leaves older payloads readable."""

    def __init__(self, key_url: str, credential: "TokenCredential", **client_options: Any) -> None:
        self._key_url = key_url.rstrip("/")
        self._credential = credential
        self._options = client_options
        self._clients: dict[str, CryptographyClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def with_identity(cls, key_url: str, client_id: str | None) -> "KeyVaultKeyWrapper":
        from azure.identity import DefaultAzureCredential

        options = {"managed_identity_client_id": client_id} if client_id else {}
        return cls(key_url, DefaultAzureCredential(**options))

    def _client(self, key_id: str) -> "CryptographyClient":
        from azure.keyvault.keys.crypto import CryptographyClient

        with self._lock:
            client = self._clients.get(key_id)
            if client is None:
                client = self._clients[key_id] = CryptographyClient(
                    key_id, self._credential, **self._options
                )
            return client

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        try:
            result = self._client(self._key_url).wrap_key(KeyWrapAlgorithm.rsa_oaep_256, data_key)
        except Exception as error:
            raise SealingError(
                f"Key Vault did not wrap the data key ({type(error).__name__})"
            ) from None
        if not result.key_id:
            raise SealingError("Key Vault did not say which key version wrapped the data key")
        return result.key_id, result.encrypted_key

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        if not key_id.startswith(self._key_url + "/"):
            raise SealingError(f"the key {key_id!r} is not a version of {self._key_url!r}")
        try:
            return self._client(key_id).unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key
        except Exception as error:
            raise SealingError(
                f"Key Vault did not unwrap the data key ({type(error).__name__})"
            ) from None
