"""Sealed payloads: nothing readable without the key, nothing movable, keys rotate."""

import base64
import json

import pytest

from scheduling.sealing import (
    SealedPayload,
    Sealer,
    SealingError,
    SealingNotConfigured,
    sealer_from_settings,
)
from scheduling.sealing.local_keys import LocalKeyWrapper

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(100, 132))).decode()
SECRET = b'{"headers": {"Authorization": "Bearer S3cr3t-Value"}}'
JOB = b"job/3f0c2a57-8d4e-4c1b-9a6f-0b1c2d3e4f50"


def sealer(setting: str = f"a:{KEY_A}") -> Sealer:
    return Sealer(LocalKeyWrapper.from_setting(setting))


def test_a_payload_round_trips_and_its_sealed_form_shows_nothing() -> None:
    sealed = sealer().seal(SECRET, JOB)
    assert sealer().unseal(sealed, JOB) == SECRET
    stored = sealed.model_dump_json()
    assert "S3cr3t" not in stored
    assert "Authorization" not in stored
    assert sealed.key_id == "local:a"


def test_every_seal_has_its_own_data_key_and_nonce() -> None:
    one, two = sealer().seal(SECRET, JOB), sealer().seal(SECRET, JOB)
    assert one.wrapped_key != two.wrapped_key
    assert one.nonce != two.nonce
    assert one.ciphertext != two.ciphertext


def test_a_payload_moved_to_another_job_does_not_open() -> None:
    sealed = sealer().seal(SECRET, JOB)
    with pytest.raises(SealingError):
        sealer().unseal(sealed, b"job/another")


def flipped(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "wrapped_key"])
def test_any_altered_byte_is_refused(field: str) -> None:
    sealed = sealer().seal(SECRET, JOB)
    altered = sealed.model_copy(update={field: flipped(getattr(sealed, field))})
    with pytest.raises(SealingError) as raised:
        sealer().unseal(altered, JOB)
    assert "S3cr3t" not in str(raised.value)


def test_an_unknown_or_foreign_key_id_is_refused() -> None:
    sealed = sealer().seal(SECRET, JOB)
    for key_id in ("local:nope", "https://vault.example/keys/k/1", "a"):
        with pytest.raises(SealingError):
            sealer().unseal(sealed.model_copy(update={"key_id": key_id}), JOB)


def test_rotation_new_key_first_and_old_payloads_still_open() -> None:
    old = sealer(f"a:{KEY_A}").seal(SECRET, JOB)
    rotated = sealer(f"b:{KEY_B},a:{KEY_A}")
    new = rotated.seal(SECRET, JOB)
    assert new.key_id == "local:b"
    assert rotated.unseal(old, JOB) == SECRET
    assert rotated.unseal(new, JOB) == SECRET
    with pytest.raises(SealingError):
        sealer(f"b:{KEY_B}").unseal(old, JOB)  # once a key is dropped, its payloads are gone


@pytest.mark.parametrize(
    "setting",
    [
        "",
        "   ",
        KEY_A,  # no id
        f":{KEY_A}",
        "a:not-base64!",
        f"a:{base64.b64encode(bytes(16)).decode()}",  # too short
        f"a:{KEY_A},a:{KEY_B}",  # an id twice
    ],
)
def test_bad_key_settings_are_refused_without_being_quoted(setting: str) -> None:
    with pytest.raises(SealingNotConfigured) as raised:
        LocalKeyWrapper.from_setting(setting)
    message = str(raised.value)
    assert "SEALING_KEYS" in message
    for secret in (KEY_A, KEY_B, "not-base64!"):
        assert secret not in message


def test_without_any_key_nothing_is_sealed() -> None:
    with pytest.raises(SealingNotConfigured) as raised:
        sealer_from_settings(sealing_keys="", key_vault_key_url="", managed_identity_client_id=None)
    assert "SEALING_KEY_VAULT_KEY_URL" in str(raised.value)
    assert "SEALING_KEYS" in str(raised.value)


def test_a_sealed_payload_round_trips_through_json() -> None:
    sealed = sealer().seal(SECRET, JOB)
    again = SealedPayload.model_validate(json.loads(sealed.model_dump_json()))
    assert sealer().unseal(again, JOB) == SECRET
