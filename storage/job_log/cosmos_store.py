"""The job log in Azure Cosmos DB for NoSQL: partition key = transaction id, item id = entry id."""

import ipaddress
import threading
from collections.abc import Mapping
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey

from storage.job_log.entries import (
    JobLogEntry,
    JobLogPage,
    check_limit,
    decode_cursor,
    encode_cursor,
    storage_key,
)

PARTITION_KEY_PATH = "/transaction_id"

# A job log write sits on a job's path: fail within seconds and let append_with_retry decide.
CLIENT_OPTIONS: Mapping[str, Any] = {
    "retry_total": 2,
    "retry_connect": 1,
    "retry_backoff_factor": 0.2,
    "retry_backoff_max": 2,
    "connection_timeout": 5,
}

# The partition key equality is in WHERE as well as in `partition_key=`: the Cosmos API test
# server ignores the argument. TOP plus one row says whether there is a next page.
_QUERY = (
    "SELECT TOP @top c.transaction_id, c.entry_id, c.timestamp, c.kind, c.level, c.message,"
    " c.fields FROM c WHERE c.transaction_id = @job{after} ORDER BY c.id"
)


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether the endpoint's host is this machine (127.0.0.0/8, ::1 or localhost)."""
    host = (urlsplit(endpoint).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CosmosJobLog:
    """JobLog on one container; the client is made on first use, then reused."""

    def __init__(
        self,
        endpoint: str,
        database: str,
        container: str,
        key: str = "",
    ) -> None:
        """With `key` (emulator, test server) the database and container are created if missing;
        without, Entra ID is used and both must exist (data-plane RBAC cannot create them)."""
        self._endpoint = endpoint
        self._database = database
        self._container_name = container
        self._key = key
        self._lock = threading.Lock()
        self._client: CosmosClient | None = None
        self._container: ContainerProxy | None = None
        self._credential: Any = None  # the Entra ID credential, closed with the client

    @property
    def container_name(self) -> str:
        return self._container_name

    def append(self, entry: JobLogEntry) -> None:
        data = entry.model_dump(mode="json")
        item = {
            "id": storage_key(entry.entry_id),
            "transaction_id": entry.transaction_id,
            "entry_id": entry.entry_id,
            "timestamp": data["timestamp"],
            "kind": entry.kind,
            "level": entry.level,
            "message": entry.message,
            "fields": data["fields"],
        }
        self._connected().upsert_item(item)

    def read(self, transaction_id: str, limit: int, cursor: str | None = None) -> JobLogPage:
        check_limit(limit)
        parameters: list[dict[str, object]] = [
            {"name": "@top", "value": limit + 1},
            {"name": "@job", "value": transaction_id},
        ]
        after = ""
        if cursor is not None:
            after = " AND c.id > @after"
            parameters.append(
                {"name": "@after", "value": storage_key(decode_cursor(transaction_id, cursor))}
            )
        items = self._connected().query_items(
            _QUERY.format(after=after),
            parameters=parameters,
            partition_key=transaction_id,
            max_item_count=limit + 1,
        )
        found = list(islice(items, limit + 1))
        entries = [JobLogEntry.model_validate(item) for item in found[:limit]]
        more = len(found) > limit
        return JobLogPage(
            entries=entries,
            next_cursor=encode_cursor(transaction_id, entries[-1].entry_id) if more else None,
        )

    def close(self) -> None:
        with self._lock:
            client, self._client, self._container = self._client, None, None
            credential, self._credential = self._credential, None
        if client is not None:
            client.close()
        if credential is not None:
            credential.close()

    def _connected(self) -> ContainerProxy:
        with self._lock:
            if self._container is None:
                # Made here, not in __init__: CosmosClient() already calls the service, and
                # an outage must surface in append/read, where callers expect it.
                client = self._open_client()
                try:
                    self._container = self._open_container(client)
                except BaseException:
                    client.close()
                    raise
                self._client = client
            return self._container

    def _open_client(self) -> CosmosClient:
        if self._key:
            # Only a loopback emulator or test server may have an unverifiable certificate.
            verify = not is_loopback_endpoint(self._endpoint)
            return CosmosClient(
                self._endpoint, credential=self._key, connection_verify=verify, **CLIENT_OPTIONS
            )
        # Imported here: azure.identity is heavy and only needed in this configuration.
        from azure.identity import DefaultAzureCredential

        # AZURE_CLIENT_ID (set by the deployment) selects the app's managed identity.
        if self._credential is None:
            self._credential = DefaultAzureCredential()
        return CosmosClient(self._endpoint, credential=self._credential, **CLIENT_OPTIONS)

    def _open_container(self, client: CosmosClient) -> ContainerProxy:
        if not self._key:
            database = client.get_database_client(self._database)
            return database.get_container_client(self._container_name)
        database = client.create_database_if_not_exists(self._database)
        return database.create_container_if_not_exists(
            self._container_name, partition_key=PartitionKey(path=PARTITION_KEY_PATH)
        )
