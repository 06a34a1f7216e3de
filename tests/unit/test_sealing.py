"""Sealed job payloads: only the right record, under a configured key, opens its payload."""

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from storage.sealing import (
    SEALING_KEY_VAULT_KEY_URL,
    SEALING_KEYS,
    KeyVaultKeyWrapper,
    LocalKeyWrapper,
    SealedPayload,
    Sealer,
    SealingError,
    SealingNotConfigured,
    sealer_from_settings,
)

SECRET = b'{"url":"https://hooks.example.com/x","headers":{"Authorization":"Bearer s3cret-t0ken"}}'
RECORD = b"tx-0001|generation=3"
KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
KEY_A_TEXT = base64.b64encode(KEY_A).decode()
KEY_B_TEXT = base64.b64encode(KEY_B).decode()
VAULT_KEY_URL = "https://scheduler-kv.vault.azure.net/keys/payloads"


def sealer(setting: str) -> Sealer:
    return Sealer(LocalKeyWrapper.from_setting(setting))


def flip_a_byte(encoded: str) -> str:
    data = bytearray(base64.b64decode(encoded))
    data[len(data) // 2] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


def test_a_sealed_payload_unseals_to_the_plaintext() -> None:
    box = sealer(f"a:{KEY_A_TEXT}")
    sealed = box.seal(SECRET, RECORD)
    assert sealed.alg == "A256GCM"
    assert sealed.key_id == "local:a"
    assert len(base64.b64decode(sealed.nonce)) == 12
    assert box.unseal(sealed, RECORD) == SECRET


def test_the_stored_json_does_not_contain_the_plaintext() -> None:
    stored = sealer(f"a:{KEY_A_TEXT}").seal(SECRET, RECORD).model_dump_json()
    assert "s3cret" not in stored
    assert "hooks.example.com" not in stored
    assert base64.b64encode(SECRET).decode()[:16] not in stored
    assert KEY_A_TEXT not in stored


def test_stored_json_reads_back_and_unseals() -> None:
    box = sealer(f"a:{KEY_A_TEXT}")
    stored = box.seal(SECRET, RECORD).model_dump_json()
    assert box.unseal(SealedPayload.from_json(stored), RECORD) == SECRET


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"alg":"A256GCM"}',
        '{"alg":"A128CBC","key_id":"","wrapped_key":"","nonce":"","ciphertext":""}',
    ],
)
def test_a_stored_record_that_is_not_a_sealed_payload_is_a_sealing_error(text: str) -> None:
    with pytest.raises(SealingError) as caught:
        SealedPayload.from_json(text)
    assert text not in str(caught.value)


def test_a_sealed_payload_refuses_unknown_fields() -> None:
    stored = sealer(f"a:{KEY_A_TEXT}").seal(SECRET, RECORD).model_dump_json()
    with pytest.raises(SealingError):
        SealedPayload.from_json(stored[:-1] + ',"plaintext":"oops"}')


@pytest.mark.parametrize(
    ("field", "tamper"),
    [
        pytest.param("ciphertext", flip_a_byte, id="ciphertext"),
        pytest.param("nonce", flip_a_byte, id="nonce"),
        pytest.param("wrapped_key", flip_a_byte, id="wrapped-key"),
        pytest.param("key_id", lambda _: "local:b", id="key-id-of-another-key"),
        pytest.param("key_id", lambda _: "local:gone", id="key-id-unknown"),
        pytest.param("ciphertext", lambda text: text[:-8], id="ciphertext-truncated"),
        pytest.param("nonce", lambda text: text + "AAAA", id="nonce-longer"),
        pytest.param("ciphertext", lambda text: text + "!", id="ciphertext-not-base64"),
    ],
)
def test_an_altered_record_does_not_unseal(field: str, tamper: Any) -> None:
    box = sealer(f"a:{KEY_A_TEXT},b:{KEY_B_TEXT}")
    sealed = box.seal(SECRET, RECORD)
    altered = sealed.model_copy(update={field: tamper(getattr(sealed, field))})
    with pytest.raises(SealingError) as caught:
        box.unseal(altered, RECORD)
    message = str(caught.value)
    assert "s3cret" not in message
    assert KEY_A_TEXT not in message
    assert KEY_B_TEXT not in message


def test_a_base64_edit_that_decodes_to_the_same_bytes_is_still_refused() -> None:
    box = sealer(f"a:{KEY_A_TEXT}")
    sealed = box.seal(SECRET, RECORD)
    # The 40-byte wrapped key ends in "==": its last character carries 4 bits the decoder drops.
    body = sealed.wrapped_key.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    edited = body[:-1] + alphabet[alphabet.index(body[-1]) ^ 1] + "=="
    assert base64.b64decode(edited) == base64.b64decode(sealed.wrapped_key)
    with pytest.raises(SealingError, match="wrapped_key is not valid base64"):
        box.unseal(sealed.model_copy(update={"wrapped_key": edited}), RECORD)


def test_another_records_associated_data_does_not_unseal() -> None:
    box = sealer(f"a:{KEY_A_TEXT}")
    sealed = box.seal(SECRET, RECORD)
    for other in (b"tx-0002|generation=3", b"tx-0001|generation=4", b""):
        with pytest.raises(SealingError, match="another record"):
            box.unseal(sealed, other)


def test_two_seals_of_the_same_plaintext_share_nothing() -> None:
    box = sealer(f"a:{KEY_A_TEXT}")
    first, second = box.seal(SECRET, RECORD), box.seal(SECRET, RECORD)
    assert first.nonce != second.nonce
    assert first.wrapped_key != second.wrapped_key
    assert first.ciphertext != second.ciphertext
    assert box.unseal(first, RECORD) == box.unseal(second, RECORD) == SECRET


def test_a_record_sealed_under_an_older_key_unseals_after_rotation() -> None:
    old = sealer(f"a:{KEY_A_TEXT}").seal(SECRET, RECORD)
    rotated = sealer(f"b:{KEY_B_TEXT},a:{KEY_A_TEXT}")
    assert rotated.unseal(old, RECORD) == SECRET
    fresh = rotated.seal(SECRET, RECORD)
    assert fresh.key_id == "local:b"
    # Dropping the old key makes its records unreadable, and says which key is missing.
    with pytest.raises(SealingError, match=r"'local:a' is not in SEALING_KEYS"):
        sealer(f"b:{KEY_B_TEXT}").unseal(old, RECORD)
    assert sealer(f"b:{KEY_B_TEXT}").unseal(fresh, RECORD) == SECRET


def test_a_key_id_no_configured_key_has_is_refused() -> None:
    box = sealer(f"a:{KEY_A_TEXT}")
    sealed = box.seal(SECRET, RECORD)
    for key_id in ("local:b", "a", f"{VAULT_KEY_URL}/0123abcd", ""):
        with pytest.raises(SealingError, match="is not in SEALING_KEYS"):
            box.unseal(sealed.model_copy(update={"key_id": key_id}), RECORD)


SHORT_KEY = base64.b64encode(bytes(16)).decode()
LONG_KEY = base64.b64encode(bytes(range(48))).decode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(f"a:{SHORT_KEY}", "entry 1: the key is 16 bytes, not 32", id="short-key"),
        pytest.param(f"a:{KEY_A_TEXT},b:{LONG_KEY}", "entry 2: the key is 48 bytes", id="long"),
        pytest.param(f"a:{KEY_A_TEXT[:-1]}", "entry 1: the key is not valid base64", id="pad"),
        pytest.param(f"a:{KEY_A_TEXT[:10]}*{KEY_A_TEXT[11:]}", "not valid base64", id="b64"),
        pytest.param(
            f"a:{KEY_A_TEXT},a:{KEY_B_TEXT}", "entry 2 repeats the id of entry 1", id="dup"
        ),
        pytest.param(f":{KEY_A_TEXT}", "entry 1 has an invalid id", id="empty-id"),
        pytest.param(f"a b:{KEY_A_TEXT}", "entry 1 has an invalid id", id="space-in-id"),
        pytest.param(KEY_A_TEXT, "entry 1 is not of the form <id>:<base64 key>", id="no-id"),
        pytest.param(f"a:{KEY_A_TEXT},", "entry 2 is not of the form", id="trailing-comma"),
        pytest.param(" ", "SEALING_KEYS is empty", id="blank"),
    ],
)
def test_a_malformed_sealing_keys_setting_is_refused_without_echoing_it(
    value: str, reason: str
) -> None:
    with pytest.raises(SealingNotConfigured) as caught:
        LocalKeyWrapper.from_setting(value)
    message = str(caught.value)
    assert SEALING_KEYS in message
    assert reason in message
    for piece in re.split("[,:]", value):
        assert len(piece.strip()) < 8 or piece.strip()[:8] not in message


def test_entries_may_be_spaced_after_commas() -> None:
    wrapper = LocalKeyWrapper.from_setting(f" b:{KEY_B_TEXT} , a:{KEY_A_TEXT} ")
    assert wrapper.current_key_id == "local:b"


def test_without_any_key_setting_sealing_is_not_configured_and_says_what_to_set() -> None:
    with pytest.raises(SealingNotConfigured) as caught:
        sealer_from_settings(
            sealing_keys="", key_vault_key_url=" ", managed_identity_client_id=None
        )
    assert SEALING_KEY_VAULT_KEY_URL in str(caught.value)
    assert SEALING_KEYS in str(caught.value)


def test_local_keys_are_used_when_no_key_vault_key_is_set() -> None:
    box = sealer_from_settings(
        sealing_keys=f"a:{KEY_A_TEXT}", key_vault_key_url="", managed_identity_client_id=None
    )
    assert isinstance(box.wrapper, LocalKeyWrapper)
    assert box.unseal(box.seal(SECRET, RECORD), RECORD) == SECRET


class RecordingCredential:
    """Stands in for DefaultAzureCredential: records how it was built, never asks for a token."""

    built_with: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **options: Any) -> None:
        self.built_with.append(options)


@pytest.fixture
def recording_credential(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import azure.identity

    built: list[dict[str, Any]] = []
    monkeypatch.setattr(RecordingCredential, "built_with", built)
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", RecordingCredential)
    return built


@pytest.mark.parametrize(
    ("client_id", "options"),
    [
        pytest.param(
            "11111111-2222-3333-4444-555555555555",
            {"managed_identity_client_id": "11111111-2222-3333-4444-555555555555"},
            id="user-assigned",
        ),
        pytest.param(None, {}, id="default-chain"),
        pytest.param("", {}, id="empty-client-id"),
    ],
)
def test_the_key_vault_key_wins_and_the_identity_is_passed_only_when_given(
    recording_credential: list[dict[str, Any]], client_id: str | None, options: dict[str, Any]
) -> None:
    box = sealer_from_settings(
        sealing_keys="", key_vault_key_url=VAULT_KEY_URL, managed_identity_client_id=client_id
    )
    assert isinstance(box.wrapper, KeyVaultKeyWrapper)
    assert box.wrapper.key_url == VAULT_KEY_URL
    assert recording_credential == [options]


def test_records_sealed_with_local_keys_stay_readable_after_moving_to_key_vault(
    recording_credential: list[dict[str, Any]],
) -> None:
    old = sealer(f"a:{KEY_A_TEXT}").seal(SECRET, RECORD)
    moved = sealer_from_settings(
        sealing_keys=f"a:{KEY_A_TEXT}",
        key_vault_key_url=VAULT_KEY_URL,
        managed_identity_client_id=None,
    )
    # The local key is read locally: no request goes to the vault (there is none here).
    assert moved.unseal(old, RECORD) == SECRET


def test_which_key_ids_the_app_holds_is_known_without_asking_a_vault(
    recording_credential: list[dict[str, Any]],
) -> None:
    # What the listing uses to show a job it could not fire as unreadable, before it fires.
    both = sealer_from_settings(
        sealing_keys=f"a:{KEY_A_TEXT}",
        key_vault_key_url=VAULT_KEY_URL,
        managed_identity_client_id=None,
    )
    assert both.holds("local:a")
    assert both.holds(f"{VAULT_KEY_URL}/0123456789abcdef0123456789abcdef")
    assert not both.holds("local:b")  # removed from SEALING_KEYS
    assert not both.holds("https://other-kv.vault.azure.net/keys/payloads/0123abcd")
    assert not both.holds(f"{VAULT_KEY_URL}/not-a-version!")
    local_only = sealer(f"b:{KEY_B_TEXT}")
    assert local_only.holds("local:b")
    assert not local_only.holds("local:a")
    assert not local_only.holds(f"{VAULT_KEY_URL}/0123abcd")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            f"{VAULT_KEY_URL}/0123456789abcdef0123456789abcdef", "without a version", id="versioned"
        ),
        pytest.param(
            "http://scheduler-kv.vault.azure.net/keys/payloads", "must be like", id="http"
        ),
        pytest.param(
            "https://scheduler-kv.vault.azure.net/secrets/payloads", "must be like", id="secret"
        ),
        pytest.param(
            "https://scheduler-kv.vault.azure.net/keys/pay_loads", "a key name is", id="bad-name"
        ),
        pytest.param(f"{VAULT_KEY_URL}?api-version=7.4", "must be like", id="query"),
    ],
)
def test_a_key_vault_key_url_that_is_not_a_versionless_key_id_is_refused(
    recording_credential: list[dict[str, Any]], url: str, reason: str
) -> None:
    with pytest.raises(SealingNotConfigured, match=reason) as caught:
        sealer_from_settings(
            sealing_keys="", key_vault_key_url=url, managed_identity_client_id=None
        )
    assert SEALING_KEY_VAULT_KEY_URL in str(caught.value)


def test_importing_sealing_does_not_load_the_key_vault_or_identity_sdks() -> None:
    # Import time is cold-start time: those SDKs load only when a Key Vault key is used.
    probe = (
        "import sys, storage.sealing\n"
        "heavy = ('azure.keyvault', 'azure.identity')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert result.stdout.strip() == "[]"
