"""A Key Vault stand-in: the key operations the SDK's CryptographyClient sends, over real HTTPS.

It holds one RSA key with versions, answers Key Vault's challenge (401 with a Bearer
challenge to an unauthenticated request), then checks a static bearer token, and implements
GET /keys/{name}[/{version}], POST .../wrapkey and POST .../unwrapkey with RSA-OAEP-256, with
errors in Key Vault's JSON shape. Listens on 127.0.0.1 with a self-signed certificate for
that address; `ca_path` is the certificate for the client to verify it with.
"""

import base64
import json
import secrets
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.loopback_tls import self_signed_certificate

HOST = "127.0.0.1"
TENANT_ID = "72f988bf-0000-4000-8000-00000000cafe"
CHALLENGE = (
    f'Bearer authorization="https://login.microsoftonline.com/{TENANT_ID}", '
    'resource="https://vault.azure.net"'
)
OAEP_SHA256 = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


Answer = tuple[int, dict[str, str], dict[str, Any] | None]
_ERROR_CODES = {401: "Unauthorized", 403: "Forbidden", 429: "Throttled", 503: "ServiceUnavailable"}


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    authorized: bool
    status: int


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyVaultStandIn:
    """One vault with one key; `rotate()` adds a version and makes it current."""

    def __init__(self, directory: Path, key_name: str, token: str) -> None:
        self.key_name = key_name
        self.token = token
        self.versions: dict[str, rsa.RSAPrivateKey] = {}
        self.current_version = ""
        self.requests: list[SeenRequest] = []
        # When set, every authenticated request gets this status and Key Vault's error body.
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        self.ca_path = directory / "vault-cert.pem"
        self._server = ThreadingHTTPServer((HOST, 0), _Handler)
        self._server.daemon_threads = True
        self._server.vault = self  # type: ignore[attr-defined]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self_signed_certificate(directory, self.ca_path))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.rotate()

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self._server.server_address[1]}"

    @property
    def key_url(self) -> str:
        return f"{self.url}/keys/{self.key_name}"

    def kid(self, version: str) -> str:
        return f"{self.key_url}/{version}"

    def rotate(self) -> str:
        version = secrets.token_hex(16)
        with self._lock:
            self.versions[version] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.current_version = version
        return version

    def unwrap_locally(self, version: str, wrapped: bytes) -> bytes:
        """What the vault's private key makes of a wrapped key (as the real service would)."""
        return self.versions[version].decrypt(wrapped, OAEP_SHA256)

    def seen(self, method: str, path: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port; a second call does nothing."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def answer(self, method: str, path: str, body: bytes, authorization: str | None) -> Answer:
        """(status, headers, JSON body or None) for one request."""
        if authorization != f"Bearer {self.token}":
            return 401, {"WWW-Authenticate": CHALLENGE}, None
        if self.fail_with is not None:
            code = _ERROR_CODES.get(self.fail_with, "Error")
            return self.fail_with, {}, _error(code, "The stand-in was told to fail")
        segments = path.split("/")
        if len(segments) < 3 or segments[1] != "keys" or segments[2] != self.key_name:
            return 404, {}, _error("KeyNotFound", "A key with this name was not found")
        version = (segments[3] if len(segments) > 3 else "") or self.current_version
        operation = segments[4] if len(segments) > 4 else ""
        key = self.versions.get(version)
        if key is None or len(segments) > 5:
            return 404, {}, _error("KeyNotFound", "This version of the key was not found")
        if method == "GET" and not operation:
            return 200, {}, self._bundle(version, key)
        if method == "POST" and operation in ("wrapkey", "unwrapkey"):
            return self._key_operation(operation, version, key, body)
        return 405, {}, _error("BadParameter", "Unsupported operation")

    def _bundle(self, version: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
        numbers = key.public_key().public_numbers()
        return {
            "key": {
                "kid": self.kid(version),
                "kty": "RSA",
                "key_ops": ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
                "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": b64url(numbers.e.to_bytes(3, "big")),
            },
            "attributes": {
                "enabled": True,
                "created": 1_900_000_000,
                "updated": 1_900_000_000,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
        }

    def _key_operation(
        self, operation: str, version: str, key: rsa.RSAPrivateKey, body: bytes
    ) -> Answer:
        try:
            parameters = json.loads(body)
            if parameters["alg"] != "RSA-OAEP-256":
                raise ValueError("unsupported algorithm")
            value = from_b64url(parameters["value"])
            if operation == "wrapkey":
                result = key.public_key().encrypt(value, OAEP_SHA256)
            else:
                result = key.decrypt(value, OAEP_SHA256)
        except (ValueError, KeyError, TypeError):
            return 400, {}, _error("BadParameter", "The parameter is incorrect")
        return 200, {}, {"kid": self.kid(version), "value": b64url(result)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        vault: KeyVaultStandIn = self.server.vault  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        authorization = self.headers.get("Authorization")
        answer: Answer = (400, {}, _error("BadParameter", "api-version is missing"))
        if "api-version" in parse_qs(parts.query):
            answer = vault.answer(method, parts.path, body, authorization)
        status, headers, payload = answer
        vault.requests.append(
            SeenRequest(method, parts.path, authorization == f"Bearer {vault.token}", status)
        )
        content = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the requests are in `vault.requests`


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
