"""The requests the app sends to Table Storage, recorded as they leave the SDK's pipeline."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.data.tables import TableClient

from blueprints import dependencies
from scheduling.job_log.table_store import TableJobLog
from scheduling.job_store import FAILED_SUFFIX, INDEX_SUFFIX, TableJobStore
from scheduling.settings import SchedulerSettings
from scheduling.table_storage import client_options, expand_development_storage


@dataclass
class TableRequests:
    """Every request sent, as (method, what it addressed): the table's name, or `$batch`."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    def record(self, request: Any) -> None:
        http = request.http_request
        resource = unquote(urlsplit(http.url).path).rsplit("/", 1)[-1]
        self.sent.append((http.method, resource.split("(", 1)[0]))

    def clear(self) -> None:
        self.sent.clear()


@contextmanager
def counted_tables(settings: SchedulerSettings) -> Iterator[TableRequests]:
    """The app's job store and job log (Table Storage, as the app opens them) with each
    request recorded, used by the app inside the block."""
    requests = TableRequests()
    connection = expand_development_storage(settings.azure_web_jobs_storage)

    def client(name: str) -> TableClient:
        return TableClient.from_connection_string(
            connection, table_name=name, raw_request_hook=requests.record, **client_options()
        )

    name = settings.job_table
    store = TableJobStore(client(name), client(name + INDEX_SUFFIX), client(name + FAILED_SUFFIX))
    log = TableJobLog(client(name))
    try:
        with dependencies.overridden(job_store=lambda _: store, job_log=lambda _: log):
            yield requests
    finally:
        store.close()
        log.close()
