"""Envelope encryption: a fresh AES-256-GCM data key per record, wrapped by a key-encryption key."""

import base64
import binascii
import os
from typing import Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, ValidationError

from scheduling.sealing.errors import SealingError

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16


class SealedPayload(BaseModel):
    """A sealed payload as stored; anyone with storage access may read every field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["A256GCM"]
    key_id: str
    wrapped_key: str
    nonce: str
    ciphertext: str

    @classmethod
    def from_json(cls, text: str | bytes) -> "SealedPayload":
        """The stored JSON parsed, or SealingError (a pydantic error would quote the input)."""
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            raise SealingError("the sealed payload is not a valid sealed record") from None


class KeyWrapper(Protocol):
    """Wraps data keys with a key-encryption key (KEK) and unwraps them again."""

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """`(key_id, wrapped)` with the current KEK."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """The data key wrapped by the KEK `key_id` (current or older); SealingError otherwise."""
        ...

    def holds(self, key_id: str) -> bool:
        """Whether `key_id` names a KEK this wrapper can ask to unwrap (no service is asked:
        a Key Vault version that was disabled or deleted still counts)."""
        ...


class Sealer:
    """Seals and unseals payloads bound to associated data (the record they belong to)."""

    def __init__(self, wrapper: KeyWrapper) -> None:
        self._wrapper = wrapper

    @property
    def wrapper(self) -> KeyWrapper:
        return self._wrapper

    def holds(self, key_id: str) -> bool:
        """Whether a payload sealed under `key_id` can be opened here, as far as this app's
        settings tell (a record whose key was removed too early cannot)."""
        return self._wrapper.holds(key_id)

    def seal(self, plaintext: bytes, associated_data: bytes) -> SealedPayload:
        # A data key per record: no nonce is ever reused under one key, and a leaked data key
        # opens one record only.
        data_key = AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, associated_data)
        key_id, wrapped = self._wrapper.wrap(data_key)
        return SealedPayload(
            alg="A256GCM",
            key_id=key_id,
            wrapped_key=_encode(wrapped),
            nonce=_encode(nonce),
            ciphertext=_encode(ciphertext),
        )

    def unseal(self, sealed: SealedPayload, associated_data: bytes) -> bytes:
        nonce = _decode(sealed.nonce, "nonce")
        ciphertext = _decode(sealed.ciphertext, "ciphertext")
        wrapped = _decode(sealed.wrapped_key, "wrapped_key")
        if len(nonce) != NONCE_BYTES:
            raise SealingError(f"the sealed payload's nonce is not {NONCE_BYTES} bytes")
        if len(ciphertext) < _TAG_BYTES:
            raise SealingError("the sealed payload's ciphertext is shorter than its tag")
        data_key = self._wrapper.unwrap(sealed.key_id, wrapped)
        if len(data_key) != DATA_KEY_BYTES:
            raise SealingError(f"the key {sealed.key_id!r} did not unwrap to an AES-256 data key")
        try:
            return AESGCM(data_key).decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise SealingError(
                "the sealed payload does not decrypt: it was altered, or it belongs to another "
                "record (the associated data differs)"
            ) from None


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode(text: str, field: str) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        data = None
    # The decoder ignores unused low bits of the last character: a record that is not exactly
    # what seal() wrote has been edited, even if it decodes to the same bytes.
    if data is None or _encode(data) != text:
        raise SealingError(f"the sealed payload's {field} is not valid base64")
    return data
