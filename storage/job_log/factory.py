"""Choosing and caching the job log store of this worker process."""

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from scheduling.settings import SchedulerSettings
from storage.job_log.entries import JobLog, JobLogEntry, JobLogNotConfigured, JobLogPage
from storage.table_storage import STORAGE_TABLE_URI, TableEndpoint, table_endpoint


class ClosableJobLog(JobLog, Protocol):
    """A store that holds clients to close when it is no longer used."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class JobLogConfig:
    """What decides which store to open; equal configs share one store per process."""

    kind: Literal["cosmos", "table", "none"]
    table_name: str = ""
    table: TableEndpoint | None = None
    cosmos_endpoint: str = ""
    cosmos_key: str = field(default="", repr=False)
    cosmos_database: str = ""
    cosmos_container: str = ""


def job_log_config(settings: SchedulerSettings, environ: Mapping[str, str]) -> JobLogConfig:
    """Cosmos DB when COSMOS_ENDPOINT is set, else Table Storage on AzureWebJobsStorage, in
    the job table, beside the records (so an outcome and its entries land together)."""
    if settings.cosmos_endpoint:
        return JobLogConfig(
            kind="cosmos",
            cosmos_endpoint=settings.cosmos_endpoint,
            cosmos_key=settings.cosmos_key,
            cosmos_database=settings.cosmos_database,
            cosmos_container=settings.cosmos_container,
        )
    table = table_endpoint(settings.azure_web_jobs_storage, environ)
    if table is not None:
        return JobLogConfig(
            kind="table",
            table_name=settings.job_table,
            table=table,
        )
    return JobLogConfig(kind="none")


class UnconfiguredJobLog:
    """The store when none can be opened: every call raises JobLogNotConfigured with why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def append(self, entry: JobLogEntry) -> None:
        raise JobLogNotConfigured(self.reason)

    def read(self, transaction_id: str, limit: int, cursor: str | None = None) -> JobLogPage:
        raise JobLogNotConfigured(self.reason)

    def close(self) -> None:
        pass


def build_job_log(config: JobLogConfig) -> ClosableJobLog:
    """A new store for `config`, without network calls; a setting that cannot work yields an
    UnconfiguredJobLog, so the error surfaces where log failures are handled."""
    try:
        return _build(config)
    except ValueError as error:
        return UnconfiguredJobLog(f"the job log store cannot be opened: {error}")


def _build(config: JobLogConfig) -> ClosableJobLog:
    # The stores import their SDKs (~0.1 s each) here, on first use, not at cold start.
    if config.kind == "cosmos":
        from storage.job_log.cosmos_store import CosmosJobLog

        return CosmosJobLog(
            config.cosmos_endpoint,
            config.cosmos_database,
            config.cosmos_container,
            key=config.cosmos_key,
        )
    from storage.job_log.table_store import TableJobLog

    if config.table is not None:
        return TableJobLog.open(config.table, config.table_name)
    return UnconfiguredJobLog(
        "no job log store is configured: set COSMOS_ENDPOINT, or AzureWebJobsStorage "
        f"(or {STORAGE_TABLE_URI}) for Table Storage"
    )


_stores: dict[JobLogConfig, ClosableJobLog] = {}
_stores_lock = threading.Lock()


def open_job_log(settings: SchedulerSettings, environ: Mapping[str, str] | None = None) -> JobLog:
    """This process's store for `settings`: made on first call, then the same object."""
    config = job_log_config(settings, os.environ if environ is None else environ)
    with _stores_lock:
        store = _stores.get(config)
        if store is None:
            store = _stores[config] = build_job_log(config)
        return store


def close_job_logs() -> None:
    """Close and forget every cached store (tests; a worker just exits)."""
    with _stores_lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()
