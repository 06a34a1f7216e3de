"""This worker process's job store and sealer, made on first use and then shared."""

import logging
import os
import threading
from collections.abc import Mapping

from scheduling.settings import SchedulerSettings
from storage.job_store import TableJobStore
from storage.sealing import Sealer, SealingNotConfigured, sealer_from_settings
from storage.table_storage import TableStorageNotConfigured, table_endpoint

_lock = threading.Lock()
_stores: dict[tuple[object, str], TableJobStore] = {}
_sealers: dict[tuple[str, str], Sealer] = {}
log = logging.getLogger(__name__)


def open_job_store(
    settings: SchedulerSettings, environ: Mapping[str, str] | None = None
) -> TableJobStore:
    """The store on AzureWebJobsStorage (a connection string, or Entra ID in Azure)."""
    endpoint = table_endpoint(
        settings.azure_web_jobs_storage, os.environ if environ is None else environ
    )
    if endpoint is None:
        raise TableStorageNotConfigured(
            "no job store is configured: set AzureWebJobsStorage (or "
            "AzureWebJobsStorage__tableServiceUri with a managed identity)"
        )
    key = (endpoint, settings.job_table)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = TableJobStore.open(endpoint, settings.job_table)
        return store


def open_sealer(settings: SchedulerSettings) -> Sealer:
    """Key Vault when SEALING_KEY_VAULT_KEY_URL is set, else SEALING_KEYS; SealingNotConfigured
    (logged, naming the setting and never its value) if neither is usable. In Azure the
    credential finds the app's identity through AZURE_CLIENT_ID."""
    key = (settings.sealing_key_vault_key_url, settings.sealing_keys.get_secret_value())
    with _lock:
        sealer = _sealers.get(key)
        if sealer is None:
            try:
                sealer = sealer_from_settings(
                    sealing_keys=key[1], key_vault_key_url=key[0], managed_identity_client_id=None
                )
            except SealingNotConfigured as error:
                log.error(
                    "payloads cannot be sealed or unsealed: %s. Creates answer 503 and due jobs "
                    "wait (nothing is lost) until the setting is fixed.",
                    error,
                )
                raise
            _sealers[key] = sealer
        return sealer


def close_job_stores() -> None:
    """Close and forget every cached store (tests; a worker just exits)."""
    with _lock:
        stores = list(_stores.values())
        _stores.clear()
        _sealers.clear()
    for store in stores:
        store.close()
