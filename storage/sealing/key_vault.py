"""Key-encryption keys in Azure Key Vault, used through the app's identity (RSA-OAEP-256).

azure.keyvault is imported on first use, not with this module: import time is cold-start
time, and most requests never seal or unseal anything.
"""

import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from scheduling.sealing.errors import SealingError, SealingNotConfigured, SealingUnavailable

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.keyvault.keys.crypto import CryptographyClient

SEALING_KEY_VAULT_KEY_URL = "SEALING_KEY_VAULT_KEY_URL"
# How long a worker keeps wrapping with the key version it looked up. After a new version is
# made current in Key Vault, new records use it within this time (old records stay readable).
DEFAULT_CURRENT_VERSION_TTL_SECONDS = 300.0

_KEY_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_KEY_VERSION = re.compile(r"[0-9A-Za-z]{1,64}")
_ROLE_HINT = "the app's identity needs the Key Vault Crypto User role on the vault"

_T = TypeVar("_T")


class KeyVaultKeyWrapper:
    """Wraps data keys with the current version of one Key Vault key; unwraps with any version.

    `key_url` is the key's id without a version. The id recorded with a wrapped key is the
    versioned one the service reports, so records sealed before a rotation name the version
    that can unwrap them. Only versions of this key are ever asked to unwrap: a record cannot
    send the app's token or a wrapped key to another vault.
    """

    def __init__(
        self,
        key_url: str,
        credential: "TokenCredential",
        *,
        current_version_ttl_seconds: float = DEFAULT_CURRENT_VERSION_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        **client_options: Any,
    ) -> None:
        self._origin, self._name = _parse_key_url(key_url)
        self._key_url = f"{self._origin}/keys/{self._name}"
        self._credential = credential
        self._client_options = client_options
        self._ttl = current_version_ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._current: CryptographyClient | None = None
        self._current_since = 0.0
        self._versions: dict[str, CryptographyClient] = {}

    @property
    def key_url(self) -> str:
        return self._key_url

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        client = self._current_client()
        result = _call(
            lambda: client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, data_key),
            f"wrap the data key with {self._key_url}",
        )
        # The SDK reads the key (which gives the version) and wraps locally with its public
        # part; when that read fails it wraps remotely and only knows the unversioned id.
        if not result.key_id or not self._is_version(result.key_id):
            raise SealingError(
                f"Key Vault did not tell which version of {self._key_url} wrapped the data key: "
                f"reading the key failed ({_ROLE_HINT})"
            )
        return result.key_id, result.encrypted_key

    def holds(self, key_id: str) -> bool:
        return self._is_version(key_id)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        if not self._is_version(key_id):
            raise SealingError(f"the key {key_id[:200]!r} is not a version of {self._key_url}")
        client = self._version_client(key_id)
        result = _call(
            lambda: client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped),
            f"unwrap the data key with {key_id}",
        )
        return result.key

    def close(self) -> None:
        """Close the clients' connections (the credential belongs to the caller)."""
        with self._lock:
            clients = [*self._versions.values(), *([self._current] if self._current else [])]
            self._versions.clear()
            self._current = None
        for client in clients:
            client.close()

    def _current_client(self) -> "CryptographyClient":
        with self._lock:
            now = self._clock()
            if self._current is None or now - self._current_since >= self._ttl:
                if self._current is not None:
                    self._retire(self._current)
                # Without a version, the client looks up the current one on first use.
                self._current = self._new_client(self._key_url)
                self._current_since = now
            return self._current

    def _retire(self, client: "CryptographyClient") -> None:
        # Once it has looked the key up, the client is bound to that version: it serves the
        # unwraps of that version, so each version keeps one client and one connection pool.
        key_id = client.key_id
        if key_id and self._is_version(key_id):
            self._versions.setdefault(key_id, client)

    def _version_client(self, key_id: str) -> "CryptographyClient":
        with self._lock:
            client = self._versions.get(key_id)
            if client is None:
                client = self._versions[key_id] = self._new_client(key_id)
            return client

    def _new_client(self, key_id: str) -> "CryptographyClient":
        from azure.keyvault.keys.crypto import CryptographyClient

        return CryptographyClient(key_id, self._credential, **self._client_options)

    def _is_version(self, key_id: str) -> bool:
        parts = urlsplit(key_id)
        segments = parts.path.split("/")
        return (
            f"{parts.scheme}://{parts.netloc}".lower() == self._origin
            and not (parts.query or parts.fragment)
            and len(segments) == 4
            and segments[:2] == ["", "keys"]
            and segments[2].lower() == self._name.lower()
            and _KEY_VERSION.fullmatch(segments[3]) is not None
        )


def _parse_key_url(key_url: str) -> tuple[str, str]:
    """(origin, key name) of a versionless key id; SealingNotConfigured naming the setting."""
    example = "https://<vault>.vault.azure.net/keys/<key name>"
    parts = urlsplit(key_url.strip())
    segments = parts.path.rstrip("/").split("/")
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise SealingNotConfigured(f"{SEALING_KEY_VAULT_KEY_URL} must be like {example}")
    if parts.query or parts.fragment or len(segments) < 3 or segments[:2] != ["", "keys"]:
        raise SealingNotConfigured(f"{SEALING_KEY_VAULT_KEY_URL} must be like {example}")
    if len(segments) > 3:
        # A pinned version would keep wrapping with it after the key is rotated.
        raise SealingNotConfigured(
            f"{SEALING_KEY_VAULT_KEY_URL} must name the key without a version, like {example}"
        )
    if not _KEY_NAME.fullmatch(segments[2]):
        raise SealingNotConfigured(
            f"{SEALING_KEY_VAULT_KEY_URL}: a key name is 1-127 letters, digits and '-'"
        )
    return f"{parts.scheme}://{parts.netloc}".lower(), segments[2]


def _call(operation: Callable[[], _T], what: str) -> _T:
    from azure.core.exceptions import AzureError, HttpResponseError

    try:
        return operation()
    except HttpResponseError as exc:
        _raise_for_response(exc, what)
    except AzureError as exc:
        # Connection and transport failures: the record says nothing about them.
        raise SealingUnavailable(
            f"could not {what}: Key Vault was not reached ({type(exc).__name__})"
        ) from None
    except ValueError as exc:
        # The SDK's own refusals, e.g. an auth challenge for another resource than the vault.
        raise SealingError(f"could not {what}: {str(exc)[:300]}") from None


def _raise_for_response(exc: Any, what: str) -> NoReturn:
    # `from None` throughout: the SDK's exception holds the request, and with it the wrapped
    # key and the bearer token; only the status and the service's error code are kept.
    status: int | None = exc.status_code
    code = getattr(getattr(exc, "error", None), "code", None)
    answer = f"HTTP {status}" + (f" {code}" if code else "")
    if status is None:
        raise SealingUnavailable(
            f"could not {what}: no token for Key Vault ({type(exc).__name__}; {_ROLE_HINT})"
        ) from None
    if status == 429 or status >= 500:
        raise SealingUnavailable(f"could not {what}: Key Vault answered {answer}") from None
    if status in (401, 403):
        raise SealingError(f"could not {what}: Key Vault answered {answer}; {_ROLE_HINT}") from None
    raise SealingError(
        f"could not {what}: Key Vault answered {answer} (the record may have been altered, or "
        "the key version disabled or deleted)"
    ) from None
