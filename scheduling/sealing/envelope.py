"""Envelope encryption: a fresh AES-256-GCM data key per payload, wrapped by a KEK."""

import base64
import binascii
import os
from typing import Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict

DATA_KEY_BYTES = 32
NONCE_BYTES = 12


class SealingError(Exception):
    """A payload could not be sealed or unsealed; the message never holds key or plaintext."""


class SealingNotConfigured(SealingError):
    """No key-encryption key is configured."""


class SealedPayload(BaseModel):
    """A payload as stored: nothing in it can be read without the KEK."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["A256GCM"] = "A256GCM"
    key_id: str
    wrapped_key: str
    nonce: str
    ciphertext: str


class KeyWrapper(Protocol):
    """A key-encryption key: wraps with the current key, unwraps with any it still knows."""

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """(the id of the key used, the wrapped data key)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """The data key; SealingError if `key_id` is unknown or `wrapped` does not open."""
        ...


class Sealer:
    """Seals and unseals payloads, each bound to `associated_data` (its record's identity)."""

    def __init__(self, wrapper: KeyWrapper) -> None:
        self._wrapper = wrapper

    def seal(self, plaintext: bytes, associated_data: bytes) -> SealedPayload:
        data_key = AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, associated_data)
        key_id, wrapped = self._wrapper.wrap(data_key)
        return SealedPayload(
            key_id=key_id,
            wrapped_key=_b64(wrapped),
            nonce=_b64(nonce),
            ciphertext=_b64(ciphertext),
        )

    def unseal(self, sealed: SealedPayload, associated_data: bytes) -> bytes:
        try:
            data_key = self._wrapper.unwrap(sealed.key_id, _unb64(sealed.wrapped_key))
            return AESGCM(data_key).decrypt(
                _unb64(sealed.nonce), _unb64(sealed.ciphertext), associated_data
            )
        except (InvalidTag, ValueError) as error:
            # ValueError: a data key or nonce of the wrong size; InvalidTag: altered or moved.
            raise SealingError(f"the payload does not open ({type(error).__name__})") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SealingError("the sealed payload is not valid base64") from None
