"""KeyVaultKeyWrapper through the real SDK against a Key Vault stand-in over HTTPS on 127.0.0.1.

The stand-in (tests/support/key_vault_stand_in.py) holds real RSA keys and answers the
requests CryptographyClient sends, challenge-auth dance included.
"""

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scheduling.sealing.errors import SealingUnavailable
from storage.sealing import KeyVaultKeyWrapper, SealedPayload, Sealer, SealingError
from tests.support.key_vault_stand_in import TENANT_ID, KeyVaultStandIn, b64url

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.stand-in-token.sig"
SECRET = b'{"headers":{"Authorization":"Bearer s3cret-t0ken"},"url":"https://hooks.example.com/"}'
RECORD = b"tx-0001|generation=1"


class StaticTokenCredential:
    """A fixed bearer token: Entra ID (and so a managed identity) cannot be reached from here.

    It records what the SDK asked for, so the tests see the scope and tenant taken from the
    vault's challenge.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.asked: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.asked.append((scopes, tenant_id))
        return AccessToken(self.token, int(time.time()) + 3600)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[KeyVaultStandIn]:
    server = KeyVaultStandIn(tmp_path, key_name="payloads", token=TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def credential() -> StaticTokenCredential:
    return StaticTokenCredential(TOKEN)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def wrapper_for(
    vault: KeyVaultStandIn, credential: StaticTokenCredential, clock: FakeClock | None = None
) -> KeyVaultKeyWrapper:
    return KeyVaultKeyWrapper(
        vault.key_url,
        credential,
        clock=clock or FakeClock(),
        # The stand-in is not a *.vault.azure.net host, which the SDK checks the challenge's
        # resource against; its certificate is verified, though.
        verify_challenge_resource=False,
        connection_verify=str(vault.ca_path),
        retry_total=0,
    )


@pytest.fixture
def sealer(
    vault: KeyVaultStandIn, credential: StaticTokenCredential, clock: FakeClock
) -> Iterator[Sealer]:
    wrapper = wrapper_for(vault, credential, clock)
    yield Sealer(wrapper)
    wrapper.close()


def open_with_vault_key(vault: KeyVaultStandIn, sealed: SealedPayload, version: str) -> bytes:
    """The plaintext, recovered with the vault's own private key: proof the wrap is real."""
    data_key = vault.unwrap_locally(version, base64.b64decode(sealed.wrapped_key))
    nonce, ciphertext = base64.b64decode(sealed.nonce), base64.b64decode(sealed.ciphertext)
    return AESGCM(data_key).decrypt(nonce, ciphertext, RECORD)


def test_the_data_key_is_wrapped_by_the_vaults_current_key_version(
    vault: KeyVaultStandIn, credential: StaticTokenCredential, sealer: Sealer
) -> None:
    sealed = sealer.seal(SECRET, RECORD)
    assert sealed.key_id == vault.kid(vault.current_version)
    assert open_with_vault_key(vault, sealed, vault.current_version) == SECRET
    # The challenge dance: an unauthenticated first request, then a token for the scope and
    # tenant the vault's challenge named.
    first, second = vault.requests[:2]
    assert (first.authorized, first.status) == (False, 401)
    assert (second.authorized, second.status) == (True, 200)
    assert credential.asked == [(("https://vault.azure.net/.default",), TENANT_ID)]


def test_a_sealed_payload_is_unsealed_by_the_vault(vault: KeyVaultStandIn, sealer: Sealer) -> None:
    sealed = sealer.seal(SECRET, RECORD)
    assert sealer.unseal(sealed, RECORD) == SECRET
    unwraps = vault.seen("POST", f"/keys/payloads/{vault.current_version}/unwrapkey")
    assert [(r.authorized, r.status) for r in unwraps] == [(True, 200)]


def test_the_key_is_looked_up_once_per_version_not_once_per_record(
    vault: KeyVaultStandIn, sealer: Sealer
) -> None:
    records = [sealer.seal(SECRET, RECORD) for _ in range(3)]
    assert [sealer.unseal(sealed, RECORD) for sealed in records] == [SECRET] * 3
    key_reads = [r.path for r in vault.requests if r.method == "GET" and r.status == 200]
    assert key_reads == ["/keys/payloads/", f"/keys/payloads/{vault.current_version}"]
    # Wrapping uses the public key the lookup returned: no round trip per record.
    assert not [r for r in vault.requests if r.path.endswith("/wrapkey")]


def test_after_a_rotation_old_records_unseal_and_new_ones_use_the_new_version(
    vault: KeyVaultStandIn, sealer: Sealer, clock: FakeClock
) -> None:
    first_version = vault.current_version
    old = sealer.seal(SECRET, RECORD)
    new_version = vault.rotate()

    # A worker keeps the version it looked up for a while (bounded staleness)...
    assert sealer.seal(SECRET, RECORD).key_id == vault.kid(first_version)
    # ...and wraps with the current version once that time has passed.
    clock.now += 301
    new = sealer.seal(SECRET, RECORD)
    assert new.key_id == vault.kid(new_version)
    assert open_with_vault_key(vault, new, new_version) == SECRET

    assert sealer.unseal(old, RECORD) == SECRET
    assert sealer.unseal(new, RECORD) == SECRET
    assert vault.seen("POST", f"/keys/payloads/{first_version}/unwrapkey")
    assert vault.seen("POST", f"/keys/payloads/{new_version}/unwrapkey")


def test_a_new_worker_wraps_with_the_rotated_version_at_once(
    vault: KeyVaultStandIn, credential: StaticTokenCredential, sealer: Sealer
) -> None:
    old = sealer.seal(SECRET, RECORD)
    new_version = vault.rotate()
    restarted = Sealer(wrapper_for(vault, credential))
    assert restarted.seal(SECRET, RECORD).key_id == vault.kid(new_version)
    assert restarted.unseal(old, RECORD) == SECRET


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        pytest.param(403, SealingError, "HTTP 403 Forbidden", id="forbidden"),
        pytest.param(401, SealingError, "Key Vault Crypto User", id="unauthorised"),
        pytest.param(503, SealingUnavailable, "HTTP 503", id="unavailable"),
        pytest.param(429, SealingUnavailable, "HTTP 429", id="throttled"),
    ],
)
def test_a_refusal_from_the_vault_is_a_sealing_error_that_leaks_nothing(
    vault: KeyVaultStandIn, sealer: Sealer, status: int, error: type[SealingError], words: str
) -> None:
    sealed = sealer.seal(SECRET, RECORD)
    vault.fail_with = status
    with pytest.raises(error) as caught:
        sealer.unseal(sealed, RECORD)
    assert words in str(caught.value)
    wrapped = base64.b64decode(sealed.wrapped_key)
    # Neither the message nor any exception the traceback would print carries a secret.
    exception: BaseException | None = caught.value
    while exception is not None:
        shown = f"{exception!s} {exception!r}"
        for secret in ("s3cret", TOKEN, sealed.wrapped_key, b64url(wrapped), sealed.ciphertext):
            assert secret not in shown
        exception = None if exception.__suppress_context__ else exception.__context__
    assert caught.value.__cause__ is None


def test_sealing_while_the_vault_refuses_is_a_sealing_error(
    vault: KeyVaultStandIn, sealer: Sealer
) -> None:
    vault.fail_with = 403
    with pytest.raises(SealingError, match="403") as caught:
        sealer.seal(SECRET, RECORD)
    assert TOKEN not in str(caught.value)


def test_an_altered_wrapped_key_is_refused_by_the_vault(
    vault: KeyVaultStandIn, sealer: Sealer
) -> None:
    sealed = sealer.seal(SECRET, RECORD)
    wrapped = bytearray(base64.b64decode(sealed.wrapped_key))
    wrapped[10] ^= 0x01
    altered = sealed.model_copy(update={"wrapped_key": base64.b64encode(wrapped).decode()})
    with pytest.raises(SealingError, match="HTTP 400") as caught:
        sealer.unseal(altered, RECORD)
    assert not isinstance(caught.value, SealingUnavailable)


def test_a_key_id_outside_the_configured_key_is_refused_without_a_request(
    vault: KeyVaultStandIn, sealer: Sealer
) -> None:
    sealed = sealer.seal(SECRET, RECORD)
    version = vault.current_version
    seen_before = len(vault.requests)
    for key_id in (
        f"https://attacker.example/keys/payloads/{version}",  # would carry the token elsewhere
        f"{vault.url}/keys/other/{version}",
        vault.key_url,
        f"{vault.key_url}/{version}/unwrapkey",
        f"{vault.key_url}/{version}?x=1",
        "local:a",
    ):
        with pytest.raises(SealingError, match="is not a version of"):
            sealer.unseal(sealed.model_copy(update={"key_id": key_id}), RECORD)
    assert len(vault.requests) == seen_before


def test_an_unreachable_vault_is_reported_as_unavailable(
    vault: KeyVaultStandIn, credential: StaticTokenCredential
) -> None:
    box = Sealer(wrapper_for(vault, credential))
    sealed = box.seal(SECRET, RECORD)
    vault.stop()
    fresh = Sealer(wrapper_for(vault, credential))
    with pytest.raises(SealingUnavailable, match="not reached"):
        fresh.unseal(sealed, RECORD)
