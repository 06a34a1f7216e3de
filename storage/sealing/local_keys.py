"""Key-encryption keys from an app setting, for development and tests (AES key wrap, RFC 3394)."""

import base64
import binascii
import re
from collections.abc import Sequence

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from scheduling.sealing.errors import SealingError, SealingNotConfigured

SEALING_KEYS = "SEALING_KEYS"
KEY_ID_PREFIX = "local:"
KEK_BYTES = 32
# Ids end up in stored records after "local:": keep them short and unambiguous.
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class LocalKeyWrapper:
    """Wraps with the first key; unwraps with any of them, so older keys keep records readable."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a LocalKeyWrapper needs at least one key")
        self._keys: dict[str, bytes] = {}
        for key_id, key in keys:
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError("a local key id is 1-64 letters, digits, '.', '_' or '-'")
            if len(key) != KEK_BYTES:
                raise ValueError(f"a local key-encryption key is {KEK_BYTES} bytes")
            if key_id in self._keys:
                raise ValueError("local key ids must be unique")
            self._keys[key_id] = key
        self._current = keys[0][0]

    @classmethod
    def from_setting(cls, value: str) -> "LocalKeyWrapper":
        """Keys from `id1:<base64 of 32 bytes>,id2:...`, the first being current."""
        return cls(parse_sealing_keys(value))

    @property
    def current_key_id(self) -> str:
        return KEY_ID_PREFIX + self._current

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return self.current_key_id, aes_key_wrap(self._keys[self._current], data_key)

    def holds(self, key_id: str) -> bool:
        return key_id.startswith(KEY_ID_PREFIX) and key_id.removeprefix(KEY_ID_PREFIX) in self._keys

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        known = key_id.startswith(KEY_ID_PREFIX)
        key = self._keys.get(key_id.removeprefix(KEY_ID_PREFIX)) if known else None
        if key is None:
            raise SealingError(
                f"the key {key_id[:100]!r} is not in {SEALING_KEYS}: keep a key there as long as "
                "records sealed with it exist"
            )
        try:
            return aes_key_unwrap(key, wrapped)
        except (InvalidUnwrap, ValueError):
            raise SealingError(
                f"the data key does not unwrap with {key_id!r}: the record was altered, or "
                "the key under that id was replaced"
            ) from None


def parse_sealing_keys(value: str) -> list[tuple[str, bytes]]:
    """The (id, key) pairs of SEALING_KEYS, in order; errors name entries by position only.

    A malformed entry might be key material written in the wrong place, so no part of the
    value is ever repeated in a message.
    """
    if not value.strip():
        raise SealingNotConfigured(f"{SEALING_KEYS} is empty")
    keys: list[tuple[str, bytes]] = []
    positions: dict[str, int] = {}
    for position, entry in enumerate(value.split(","), start=1):
        where = f"{SEALING_KEYS} entry {position}"
        key_id, colon, encoded = entry.strip().partition(":")
        if not colon:
            raise SealingNotConfigured(f"{where} is not of the form <id>:<base64 key>")
        if not _KEY_ID.fullmatch(key_id):
            raise SealingNotConfigured(
                f"{where} has an invalid id: use 1-64 letters, digits, '.', '_' or '-'"
            )
        if key_id in positions:
            raise SealingNotConfigured(
                f"{where} repeats the id of entry {positions[key_id]}: ids must be unique"
            )
        try:
            key = base64.b64decode(encoded.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise SealingNotConfigured(f"{where}: the key is not valid base64") from None
        if len(key) != KEK_BYTES:
            raise SealingNotConfigured(
                f"{where}: the key is {len(key)} bytes, not {KEK_BYTES} "
                "(generate one with `openssl rand -base64 32`)"
            )
        positions[key_id] = position
        keys.append((key_id, key))
    return keys
