"""Local key-encryption keys from SEALING_KEYS, for development and tests (AES key wrap)."""

import base64
import binascii

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from scheduling.sealing.envelope import SealingError, SealingNotConfigured

KEY_ID_PREFIX = "local:"
KEY_BYTES = 32


class LocalKeyWrapper:
    """Keys by id; the first is current. Wraps with RFC 3394 AES key wrap."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        self._keys = keys
        self._current = current

    @classmethod
    def from_setting(cls, value: str) -> "LocalKeyWrapper":
        """SEALING_KEYS: `id:<base64 of 32 bytes>[,id2:...]`, the current key first.

        Errors name the setting and the entry's position, never its text.
        """
        keys: dict[str, bytes] = {}
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if not entries:
            raise SealingNotConfigured("SEALING_KEYS is empty")
        for position, entry in enumerate(entries, start=1):
            key_id, separator, encoded = entry.partition(":")
            key_id = key_id.strip()
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if not separator or not key_id or len(key) != KEY_BYTES:
                raise SealingNotConfigured(
                    f"SEALING_KEYS entry {position} must be `<id>:<base64 of {KEY_BYTES} "
                    "random bytes>` (e.g. `k1:` followed by `openssl rand -base64 32`)"
                )
            if key_id in keys:
                raise SealingNotConfigured(f"SEALING_KEYS names key id {key_id!r} twice")
            keys[key_id] = key
        return cls(keys, current=next(iter(keys)))

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return KEY_ID_PREFIX + self._current, aes_key_wrap(self._keys[self._current], data_key)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        key = self._keys.get(key_id.removeprefix(KEY_ID_PREFIX))
        if not key_id.startswith(KEY_ID_PREFIX) or key is None:
            raise SealingError(f"the key {key_id!r} is not in SEALING_KEYS")
        try:
            return aes_key_unwrap(key, wrapped)
        except (InvalidUnwrap, ValueError):
            raise SealingError(f"the data key does not open with {key_id!r}") from None
