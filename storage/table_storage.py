"""Reaching Azure Table Storage on AzureWebJobsStorage: one way for every store that uses it."""

import contextlib
import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:  # the SDK is imported on first use, not at cold start
    import ssl

    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.data.tables import TableClient
    from azure.data.tables.aio import TableClient as AsyncTableClient

T = TypeVar("T")

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key: not a secret.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_TABLE_PORT = 10002

# The identity-based form of AzureWebJobsStorage, as the Functions host reads it.
STORAGE_TABLE_URI = "AzureWebJobsStorage__tableServiceUri"
STORAGE_ACCOUNT_NAME = "AzureWebJobsStorage__accountName"
STORAGE_CLIENT_ID = "AzureWebJobsStorage__clientId"

# A store call sits on a request's or a job's path: a hung store fails it within about 10 s
# (two tries of at most 5 s), a refused one at once; the caller decides what comes next.
CLIENT_OPTIONS: Mapping[str, Any] = {
    "retry_total": 1,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 1,
    "connection_timeout": 3,
    "read_timeout": 5,
}
# What `requests` reads from the environment for each request when allowed to: a proxy, or
# a CA bundle. Without any of them the reading is skipped: it walks the whole environment
# twice per request (13 % of a point read's CPU here, more on a Functions host).
_PROXY_ENVIRONMENT = frozenset({"http_proxy", "https_proxy", "all_proxy"})
_TRANSPORT_ENVIRONMENT = _PROXY_ENVIRONMENT | {"requests_ca_bundle", "curl_ca_bundle"}


# Connections a client keeps open for reuse: as many as the worker's threads may use at
# once (requests keeps 10; every request beyond them opened, and dropped, a connection).
POOLED_CONNECTIONS = 64


def client_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The options of every Table Storage client the app opens (a session of its own each)."""
    environ = os.environ if environ is None else environ
    needed = any(name.lower() in _TRANSPORT_ENVIRONMENT for name in environ)
    return {**CLIENT_OPTIONS, "session": _session(trust_env=needed), "session_owner": True}


def _session(*, trust_env: bool) -> Any:
    """A requests session as the SDK's transport makes one (no retries of its own: the SDK's
    policy retries), with room for POOLED_CONNECTIONS connections."""
    import requests
    from urllib3.util.retry import Retry

    session = requests.Session()
    session.trust_env = trust_env
    adapter = requests.adapters.HTTPAdapter(
        pool_maxsize=POOLED_CONNECTIONS,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session


_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
# A string property holds at most 64 KiB of UTF-16: 16,000 characters fit even if all are
# astral (two code units each). Longer texts continue in "<name>_1", "<name>_2", ...
_CHUNK_CHARS = 16_000


class TableStorageNotConfigured(RuntimeError):
    """Neither a connection string nor an identity-based endpoint is set."""


@dataclass(frozen=True)
class TableEndpoint:
    """Where a table lives and how to sign in; equal endpoints share one client per process."""

    # repr=False: connection strings carry account keys, which must not end up in logs.
    connection_string: str = field(default="", repr=False)
    table_service_uri: str = ""
    client_id: str = ""


def _lookup(environ: Mapping[str, str], name: str) -> str:
    # Case-insensitive like the settings: app setting names are, environment variables not.
    wanted = name.lower()
    return next((value for key, value in environ.items() if key.lower() == wanted), "").strip()


def table_endpoint(connection_string: str, environ: Mapping[str, str]) -> TableEndpoint | None:
    """AzureWebJobsStorage as a connection string, else its identity-based form; None if unset."""
    if connection_string:
        return TableEndpoint(connection_string=connection_string)
    table_uri = _lookup(environ, STORAGE_TABLE_URI)
    account = _lookup(environ, STORAGE_ACCOUNT_NAME)
    if not table_uri and account:
        table_uri = f"https://{account}.table.core.windows.net"
    if not table_uri:
        return None
    return TableEndpoint(table_service_uri=table_uri, client_id=_lookup(environ, STORAGE_CLIENT_ID))


def open_table(
    endpoint: TableEndpoint, table_name: str
) -> "tuple[TableClient, TokenCredential | None]":
    """A client for one table (no network call yet), and the credential to close with it."""
    from azure.data.tables import TableClient

    name = check_table_name(table_name)
    if endpoint.connection_string:
        client = TableClient.from_connection_string(
            expand_development_storage(endpoint.connection_string),
            table_name=name,
            **client_options(),
        )
        return client, None
    # Imported here: azure.identity is heavy and only needed in this configuration.
    from azure.identity import DefaultAzureCredential

    # Passing None would hide AZURE_CLIENT_ID from the credential: only pass a real id.
    options = {"managed_identity_client_id": endpoint.client_id} if endpoint.client_id else {}
    credential = DefaultAzureCredential(**options)
    client = TableClient(
        endpoint=endpoint.table_service_uri,
        table_name=name,
        credential=credential,
        **client_options(),
    )
    return client, credential


def open_async_tables(
    endpoint: TableEndpoint, table_names: Sequence[str]
) -> "tuple[list[AsyncTableClient], AsyncTokenCredential | None]":
    """Async clients for some tables (the aiohttp transport, for writes awaited on an event
    loop: call it on the loop), sharing one credential to close with them; the same options
    as `open_table`'s."""
    from azure.data.tables.aio import TableClient

    names = [check_table_name(name) for name in table_names]
    environment = aiohttp_environment(os.environ)
    if endpoint.connection_string:
        expanded = expand_development_storage(endpoint.connection_string)
        clients = [
            TableClient.from_connection_string(
                expanded, table_name=name, **CLIENT_OPTIONS, **_transport(environment)
            )
            for name in names
        ]
        return clients, None
    from azure.identity.aio import DefaultAzureCredential

    identity = {"managed_identity_client_id": endpoint.client_id} if endpoint.client_id else {}
    credential = DefaultAzureCredential(**identity)
    clients = [
        TableClient(
            endpoint=endpoint.table_service_uri,
            table_name=name,
            credential=credential,
            **CLIENT_OPTIONS,
            **_transport(environment),
        )
        for name in names
    ]
    return clients, credential


@dataclass(frozen=True)
class AiohttpEnvironment:
    """What the sync clients' transport takes from the environment, for aiohttp's: whether
    to read proxies (on every request, so only when one is set), and the CA bundle requests
    would verify with (a TLS-inspecting proxy's root, say)."""

    proxies: bool
    ca_bundle: str | None


def aiohttp_environment(environ: Mapping[str, str]) -> AiohttpEnvironment:
    # requests reads proxies in either case, its CA bundle variables only in upper case.
    return AiohttpEnvironment(
        proxies=any(key.lower() in _PROXY_ENVIRONMENT for key in environ),
        ca_bundle=environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or None,
    )


def _transport(environment: AiohttpEnvironment) -> dict[str, Any]:
    if environment.ca_bundle is None:
        return {"use_env_settings": environment.proxies}
    import aiohttp

    # Given the bundle as `connection_verify`, azure-core would load it again for every
    # request (a third of a batched job's time here): a session verifying with it instead.
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=_verifying_with(environment.ca_bundle)),
        trust_env=environment.proxies,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,  # as azure-core's own session: it decompresses itself
    )
    return {"session": session, "session_owner": True}


@functools.cache
def _verifying_with(ca_bundle: str) -> "ssl.SSLContext":
    """Read once per process (requests reads the bundle for each request: a bundle changed
    on disk is seen by a batch after a restart); a folder of certificates, as requests takes
    it, or a file."""
    import ssl

    if os.path.isdir(ca_bundle):
        return ssl.create_default_context(capath=ca_bundle)
    return ssl.create_default_context(cafile=ca_bundle)


def expand_development_storage(connection_string: str) -> str:
    """`UseDevelopmentStorage=true[;DevelopmentStorageProxyUri=...]` as Azurite's full string."""
    settings = {}
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            settings[name.strip().lower()] = value.strip()
    if settings.get("usedevelopmentstorage", "").lower() != "true":
        return connection_string
    base = settings.get("developmentstorageproxyuri", "http://127.0.0.1").rstrip("/")
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"TableEndpoint={base}:{AZURITE_TABLE_PORT}/{AZURITE_ACCOUNT};"
    )


def check_table_name(name: str) -> str:
    """`name` if Table Storage accepts it (3-63 letters and digits, a letter first)."""
    if not _TABLE_NAME.fullmatch(name) or name.lower() == "tables":
        raise ValueError(
            f"table name {name!r} is invalid: use 3-63 letters and digits, a letter first"
        )
    return name


def utf16_bytes(text: str) -> int:
    return len(text.encode("utf-16-le"))


def put_text(entity: dict[str, Any], name: str, text: str) -> None:
    """Store a text of any length in `name`, `name_1`, ...: one property holds 64 KiB."""
    entity[name] = text[:_CHUNK_CHARS]
    for index, start in enumerate(range(_CHUNK_CHARS, len(text), _CHUNK_CHARS), start=1):
        entity[f"{name}_{index}"] = text[start : start + _CHUNK_CHARS]


def get_text(entity: Mapping[str, Any], name: str) -> str:
    """The text `put_text` stored under `name`."""
    parts = [str(entity.get(name, ""))]
    index = 1
    while f"{name}_{index}" in entity:
        parts.append(str(entity[f"{name}_{index}"]))
        index += 1
    return "".join(parts)


def delete_row(table: "TableClient", keys: tuple[str, str], etag: str | None) -> None:
    """Delete an index row; with `etag`, only that version (one written again since stays)."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    partition, row = keys
    # The SDK answers a missing row (or table) as success: nothing left to drop.
    if etag is None:
        table.delete_entity(partition, row)
        return
    with contextlib.suppress(ResourceModifiedError):
        table.delete_entity(
            partition, row, etag=etag, match_condition=MatchConditions.IfNotModified
        )


def query_page(
    client: "TableClient",
    query: str,
    parameters: dict[str, Any],
    limit: int,
    continuation: dict[str, str] | None,
) -> tuple[list[Any], dict[str, str] | None]:
    """One page of a query's rows in key order, and the service's next token."""
    from azure.core.exceptions import ResourceNotFoundError

    # The SDK's token is the service's next (PartitionKey, RowKey), typed as a str.
    pages: Any = client.query_entities(
        query, parameters=parameters, results_per_page=limit
    ).by_page(continuation_token=cast(Any, continuation))
    try:
        page = next(pages)
        rows = list(islice(page, limit))
    except StopIteration:
        return [], None
    except ResourceNotFoundError:
        return [], None  # no table yet: nothing was ever written to it
    # The service may leave NextRowKey out (at a partition server's boundary): keep only the
    # parts it gave.
    token = pages.continuation_token
    given = {name: str(value) for name, value in (token or {}).items() if value}
    return rows, given or None


def on_table(client: "TableClient", write: Callable[[], T]) -> T:
    """Run a write, making the table first if it does not exist yet (a fresh account)."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    try:
        return write()
    except ResourceNotFoundError:
        # Another worker or thread may have made it meanwhile.
        with contextlib.suppress(ResourceExistsError):
            client.create_table()
        return write()


def upsert_rows(client: "TableClient", rows: list[dict[str, Any]]) -> list[str]:
    """Write rows of one partition (at most 100): one point write, or one transaction; the
    rows' new ETags, in order."""
    from azure.data.tables import UpdateMode

    if len(rows) == 1:  # a point write costs the service less than a batch of one
        written = on_table(client, lambda: client.upsert_entity(rows[0], mode=UpdateMode.REPLACE))
        return [str(written.get("etag") or "")]
    operations = [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows]
    # The service answers a transaction's operations in their order.
    return [str(part.get("etag") or "") for part in in_transaction(client, operations)]


def in_transaction(client: "TableClient", operations: list[Any]) -> list[Mapping[str, Any]]:
    """One entity group transaction, making the table first on a fresh account; what the
    service said of each operation (its ETag), in order."""
    from azure.core.exceptions import ResourceExistsError
    from azure.data.tables import TableTransactionError

    try:
        return client.submit_transaction(operations)
    except TableTransactionError as error:
        if error.status_code != 404:  # no table yet: nothing was ever written to it
            raise
        with contextlib.suppress(ResourceExistsError):
            client.create_table()
        return client.submit_transaction(operations)
