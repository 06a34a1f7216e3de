"""KeyVaultKeyWrapper through the real Key Vault SDK against an HTTPS emulation on 127.0.0.1.

Key Vault cannot run here: this server answers the three calls the SDK's CryptographyClient
makes for wrap and unwrap — the challenge (401 with WWW-Authenticate), GET of the key (its
public part; the SDK then wraps locally with RSA-OAEP-256), and POST .../unwrapkey — with a
real RSA key per version. The token comes from a static credential: Entra ID cannot run
here either.
"""

import base64
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from scheduling.sealing import Sealer, SealingError
from scheduling.sealing.key_vault import KeyVaultKeyWrapper

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
TOKEN = "test-token"
JOB = b"job/3f0c2a57-8d4e-4c1b-9a6f-0b1c2d3e4f50"
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StaticToken:
    """A TokenCredential that hands out one token (Entra ID is not reachable here)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, 2**31 - 1)


@dataclass
class Vault:
    """The key `sealing`: its versions (the last is current), and what it refuses."""

    versions: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    refuse_unwrap: bool = False
    base_url: str = ""

    def rotate(self) -> str:
        version = f"v{len(self.versions) + 1}"
        self.versions[version] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return version

    def jwk(self, version: str) -> dict[str, Any]:
        numbers = self.versions[version].public_key().public_numbers()
        return {
            "kid": f"{self.base_url}/keys/sealing/{version}",
            "kty": "RSA",
            "key_ops": ["wrapKey", "unwrapKey"],
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes(3, "big")),
        }


def handler_for(vault: Vault) -> type[BaseHTTPRequestHandler]:
    class KeyVaultApi(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.answer(
                401,
                {"error": {"code": "Unauthorized"}},
                {
                    "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/'
                    'tenant", resource="https://vault.azure.net"'
                },
            )
            return False

        def do_GET(self) -> None:
            if not self.authorised():
                return
            parts = self.path.split("?")[0].strip("/").split("/")
            version = parts[2] if len(parts) > 2 and parts[2] else list(vault.versions)[-1]
            self.answer(200, {"key": vault.jwk(version), "attributes": {"enabled": True}})

        def do_POST(self) -> None:
            if not self.authorised():
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            parts = self.path.split("?")[0].strip("/").split("/")
            if vault.refuse_unwrap:
                self.answer(403, {"error": {"code": "Forbidden", "message": "no"}})
                return
            if parts[-1] != "unwrapkey" or body.get("alg") != "RSA-OAEP-256":
                self.answer(400, {"error": {"code": "BadParameter"}})
                return
            key = vault.versions[parts[2]].decrypt(unb64url(body["value"]), OAEP)
            self.answer(200, {"kid": vault.jwk(parts[2])["kid"], "value": b64url(key)})

    return KeyVaultApi


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def vault() -> Iterator[Vault]:
    state = Vault()
    state.rotate()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    with tempfile.TemporaryDirectory() as directory:
        cert, key = self_signed(Path(directory))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        state.base_url = f"https://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield state
        finally:
            server.shutdown()
            server.server_close()


def wrapper(vault: Vault) -> KeyVaultKeyWrapper:
    # A loopback vault: no certificate chain to a public CA, no vault.azure.net domain.
    return KeyVaultKeyWrapper(
        f"{vault.base_url}/keys/sealing",
        StaticToken(),
        connection_verify=False,
        verify_challenge_resource=False,
    )


def test_a_payload_sealed_with_the_vault_key_opens_and_names_the_key_version(
    vault: Vault,
) -> None:
    sealer = Sealer(wrapper(vault))
    sealed = sealer.seal(b"Authorization: Bearer S3cret", JOB)
    assert sealed.key_id == f"{vault.base_url}/keys/sealing/v1"
    # A fresh worker (no cached key) opens it through the vault's unwrapkey.
    assert Sealer(wrapper(vault)).unseal(sealed, JOB) == b"Authorization: Bearer S3cret"


def test_after_a_key_rotation_new_payloads_use_it_and_old_ones_still_open(vault: Vault) -> None:
    old = Sealer(wrapper(vault)).seal(b"before", JOB)
    vault.rotate()
    fresh = Sealer(wrapper(vault))
    new = fresh.seal(b"after", JOB)
    assert new.key_id.endswith("/keys/sealing/v2")
    assert fresh.unseal(old, JOB) == b"before"
    assert fresh.unseal(new, JOB) == b"after"


def test_a_vault_that_refuses_is_a_sealing_error_that_quotes_nothing(vault: Vault) -> None:
    sealed = Sealer(wrapper(vault)).seal(b"S3cret payload", JOB)
    vault.refuse_unwrap = True
    with pytest.raises(SealingError) as raised:
        Sealer(wrapper(vault)).unseal(sealed, JOB)
    assert "S3cret" not in str(raised.value)


def test_a_key_id_of_another_key_is_refused_before_any_call(vault: Vault) -> None:
    sealed = Sealer(wrapper(vault)).seal(b"x", JOB)
    foreign = sealed.model_copy(update={"key_id": "https://other.vault.example/keys/k/v1"})
    with pytest.raises(SealingError):
        Sealer(wrapper(vault)).unseal(foreign, JOB)
