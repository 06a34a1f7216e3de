"""The job log in Azure Table Storage: a partition per job, a row per entry (Azurite locally)."""

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from scheduling.job_log.entries import (
    MAX_READ_LIMIT,
    JobLogEntry,
    JobLogPage,
    check_limit,
    decode_cursor,
    encode_cursor,
    from_storage_key,
    storage_key,
)
from scheduling.job_log.redaction import redact_fields

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key: not a secret.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_TABLE_PORT = 10002

# A job log write sits on a job's path: fail within seconds and let append_with_retry decide.
CLIENT_OPTIONS: Mapping[str, Any] = {
    "retry_total": 2,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 2,
    "connection_timeout": 5,
    "read_timeout": 20,
}

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
# A string property holds at most 64 KiB of UTF-16: 16,000 characters fit even if all are
# astral (two code units each). Longer texts continue in "<name>_1", "<name>_2", ...
_CHUNK_CHARS = 16_000
# An entity holds at most 1 MiB; leave room for the keys and the other properties.
_MAX_TEXT_UTF16_BYTES = 960 * 1024


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
    if not _TABLE_NAME.match(name) or name.lower() == "tables":
        raise ValueError(
            f"job log table name {name!r} is invalid: use 3-63 letters and digits, a letter first"
        )
    return name


class TableJobLog:
    """JobLog on one table: PartitionKey = transaction id, RowKey = entry id."""

    def __init__(
        self,
        client: TableClient,
        redacted_headers: Iterable[str] = (),
        credential: TokenCredential | None = None,
    ) -> None:
        self._client = client
        self._credential = credential
        self._redacted_headers = tuple(redacted_headers)

    @classmethod
    def from_connection_string(
        cls, connection_string: str, table_name: str, redacted_headers: Iterable[str] = ()
    ) -> "TableJobLog":
        """A store on a key- or SAS-based connection string, `UseDevelopmentStorage=true` too."""
        client = TableClient.from_connection_string(
            expand_development_storage(connection_string),
            table_name=check_table_name(table_name),
            **CLIENT_OPTIONS,
        )
        return cls(client, redacted_headers)

    @classmethod
    def from_identity(
        cls,
        table_service_uri: str,
        table_name: str,
        client_id: str | None = None,
        redacted_headers: Iterable[str] = (),
    ) -> "TableJobLog":
        """A store reached with Entra ID: the managed identity `client_id`, or the default chain."""
        # Imported here: azure.identity is heavy and only needed in this configuration.
        from azure.identity import DefaultAzureCredential

        # Passing None would hide AZURE_CLIENT_ID from the credential: only pass a real id.
        options = {"managed_identity_client_id": client_id} if client_id else {}
        credential = DefaultAzureCredential(**options)
        client = TableClient(
            endpoint=table_service_uri,
            table_name=check_table_name(table_name),
            credential=credential,
            **CLIENT_OPTIONS,
        )
        return cls(client, redacted_headers, credential)

    @property
    def table_name(self) -> str:
        return self._client.table_name

    def append(self, entry: JobLogEntry) -> None:
        entity = self._to_entity(entry)
        try:
            self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except ResourceNotFoundError:
            # The table is made on first use, so a fresh storage account needs no setup step.
            self._create_table()
            self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def read(self, transaction_id: str, limit: int, cursor: str | None = None) -> JobLogPage:
        check_limit(limit)
        query = "PartitionKey eq @job"
        parameters = {"job": storage_key(transaction_id)}
        if cursor is not None:
            query += " and RowKey gt @after"
            parameters["after"] = storage_key(decode_cursor(transaction_id, cursor))
        # The service returns at most 1000 rows a request (and may refuse a larger $top); the
        # pager follows continuation tokens for the one row past a 1000-entry page.
        rows = self._client.query_entities(
            query, parameters=parameters, results_per_page=min(limit + 1, MAX_READ_LIMIT)
        )
        try:
            # One row past the page says whether there is a next page.
            found = list(islice(rows, limit + 1))
        except ResourceNotFoundError:
            return JobLogPage(entries=[])  # no table yet: nothing was ever logged
        entries = [_from_entity(row) for row in found[:limit]]
        more = len(found) > limit
        return JobLogPage(
            entries=entries,
            next_cursor=encode_cursor(transaction_id, entries[-1].entry_id) if more else None,
        )

    def close(self) -> None:
        self._client.close()
        if self._credential is not None and hasattr(self._credential, "close"):
            self._credential.close()

    def _create_table(self) -> None:
        # Another worker or thread may have made it meanwhile.
        with contextlib.suppress(ResourceExistsError):
            self._client.create_table()

    def _to_entity(self, entry: JobLogEntry) -> dict[str, Any]:
        data = entry.model_dump(mode="json")
        fields = redact_fields(data["fields"], self._redacted_headers)
        message = entry.message
        fields_json = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        if _utf16_bytes(message) + _utf16_bytes(fields_json) > _MAX_TEXT_UTF16_BYTES:
            raise ValueError(
                f"job log entry {entry.entry_id!r} is too large for Table Storage "
                f"(message and fields must stay under {_MAX_TEXT_UTF16_BYTES // 1024} KiB)"
            )
        entity: dict[str, Any] = {
            "PartitionKey": storage_key(entry.transaction_id),
            "RowKey": storage_key(entry.entry_id),
            "logged_at": data["timestamp"],
            "kind": entry.kind,
            "level": entry.level,
        }
        _put_text(entity, "message", message)
        _put_text(entity, "fields", fields_json)
        return entity


def _utf16_bytes(text: str) -> int:
    return len(text.encode("utf-16-le"))


def _put_text(entity: dict[str, Any], name: str, text: str) -> None:
    entity[name] = text[:_CHUNK_CHARS]
    for index, start in enumerate(range(_CHUNK_CHARS, len(text), _CHUNK_CHARS), start=1):
        entity[f"{name}_{index}"] = text[start : start + _CHUNK_CHARS]


def _get_text(entity: Mapping[str, Any], name: str) -> str:
    parts = [str(entity.get(name, ""))]
    index = 1
    while f"{name}_{index}" in entity:
        parts.append(str(entity[f"{name}_{index}"]))
        index += 1
    return "".join(parts)


def _from_entity(entity: Mapping[str, Any]) -> JobLogEntry:
    return JobLogEntry.model_validate(
        {
            "transaction_id": from_storage_key(entity["PartitionKey"]),
            "entry_id": from_storage_key(entity["RowKey"]),
            "timestamp": entity["logged_at"],
            "kind": entity["kind"],
            "level": entity["level"],
            "message": _get_text(entity, "message"),
            "fields": json.loads(_get_text(entity, "fields") or "{}"),
        }
    )
