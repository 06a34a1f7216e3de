"""One behavioural suite for both job log stores: real Azurite and the Cosmos API test server."""

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from azure.cosmos import CosmosClient
from azure.data.tables import TableClient

from scheduling.settings import SchedulerSettings
from storage.job_log import InvalidCursor, JobLog, JobLogEntry, JobLogNotConfigured
from storage.job_log.cosmos_store import CosmosJobLog, is_loopback_endpoint
from storage.job_log.entries import (
    MAX_READ_LIMIT,
    decode_cursor,
    encode_cursor,
    from_storage_key,
    make_entry_id,
    storage_key,
)
from storage.job_log.factory import close_job_logs, job_log_config, open_job_log
from storage.job_log.resilient import append_with_retry
from storage.job_log.table_store import TableJobLog
from storage.table_storage import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    STORAGE_CLIENT_ID,
    STORAGE_TABLE_URI,
    TableEndpoint,
    client_options,
    expand_development_storage,
)
from tests.support.services import AzuriteService, CosmosService, free_port

# Loopback test servers only: the store turns verification off for them, urllib3 says so.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

T0 = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)

Store = TableJobLog | CosmosJobLog


@dataclass
class StoreCase:
    """A fresh store (own table or container) and a way to see what it stored, raw."""

    kind: str
    store: Store
    stored_items: Callable[[str], list[dict[str, Any]]]


def _table_case(azurite: AzuriteService) -> Iterator[StoreCase]:
    table = f"joblog{uuid.uuid4().hex[:12]}"
    store = TableJobLog.open(TableEndpoint(connection_string=azurite.connection_string), table)
    raw = TableClient.from_connection_string(azurite.connection_string, table_name=table)

    def stored_items(transaction_id: str) -> list[dict[str, Any]]:
        rows = raw.query_entities("PartitionKey eq @job", parameters={"job": transaction_id})
        return [dict(row) for row in rows]

    try:
        yield StoreCase("table", store, stored_items)
    finally:
        raw.close()
        store.close()


def _cosmos_case(cosmos: CosmosService) -> Iterator[StoreCase]:
    container = f"joblog-{uuid.uuid4().hex[:12]}"
    store = CosmosJobLog(
        cosmos.endpoint,
        "scheduler",
        container,
        key=cosmos.key,
    )
    raw = CosmosClient(cosmos.endpoint, credential=cosmos.key, connection_verify=False)

    def stored_items(transaction_id: str) -> list[dict[str, Any]]:
        items = (
            raw.get_database_client("scheduler")
            .get_container_client(container)
            .query_items(
                "SELECT * FROM c WHERE c.transaction_id = @job",
                parameters=[{"name": "@job", "value": transaction_id}],
                enable_cross_partition_query=True,
            )
        )
        return list(items)

    try:
        yield StoreCase("cosmos", store, stored_items)
    finally:
        raw.close()
        store.close()


@pytest.fixture(params=["table", "cosmos"])
def case(request: pytest.FixtureRequest) -> Iterator[StoreCase]:
    if request.param == "table":
        yield from _table_case(request.getfixturevalue("azurite"))
    else:
        yield from _cosmos_case(request.getfixturevalue("cosmos_server"))


def new_job() -> str:
    return str(uuid.uuid4())


def entry(job: str, n: int, **changes: Any) -> JobLogEntry:
    at = T0 + timedelta(seconds=n)
    values: dict[str, Any] = {
        "transaction_id": job,
        "entry_id": make_entry_id(at, f"{n:03d}"),
        "timestamp": at,
        "kind": "log",
        "message": f"entry {n}",
        "fields": {"n": n},
    }
    values.update(changes)
    return JobLogEntry.model_validate(values)


def read_all(store: Store, job: str, limit: int) -> list[list[JobLogEntry]]:
    pages = []
    cursor = None
    for _ in range(100):  # bounded: a cursor loop would otherwise never end
        page = store.read(job, limit, cursor)
        pages.append(page.entries)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
    raise AssertionError("paging did not end")


def test_entries_read_back_as_written_in_time_order(case: StoreCase) -> None:
    job = new_job()
    written = [
        entry(job, 1, kind="accepted", message="accepted"),
        entry(
            job,
            2,
            level="warning",
            message="naïve ☃ 𝄞 text",
            fields={"nested": {"list": [1, 2.5, None, True], "text": "é"}, "empty": {}},
        ),
        entry(job, 3, kind="outcome", level="error", message="", fields={}),
    ]
    for item in written:
        case.store.append(item)

    page = case.store.read(job, 10)

    assert page.entries == written
    assert page.next_cursor is None


def test_pages_of_ten_over_twenty_five_entries(case: StoreCase) -> None:
    job = new_job()
    written = [entry(job, n) for n in range(25)]
    for item in written:
        case.store.append(item)

    pages = read_all(case.store, job, 10)

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [item for page in pages for item in page] == written


def test_a_page_exactly_full_has_no_next_cursor(case: StoreCase) -> None:
    job = new_job()
    for n in range(4):
        case.store.append(entry(job, n))

    assert [len(page) for page in read_all(case.store, job, 2)] == [2, 2]
    assert case.store.read(job, 4).next_cursor is None


def test_the_largest_page_holds_every_entry(case: StoreCase) -> None:
    job = new_job()
    for n in range(3):
        case.store.append(entry(job, n))

    page = case.store.read(job, MAX_READ_LIMIT)

    assert [item.fields["n"] for item in page.entries] == [0, 1, 2]
    assert page.next_cursor is None


def test_entries_appended_out_of_order_read_in_time_order(case: StoreCase) -> None:
    job = new_job()
    for n in (5, 1, 4, 2, 3, 0):
        case.store.append(entry(job, n))

    pages = read_all(case.store, job, 4)

    assert [item.fields["n"] for page in pages for item in page] == [0, 1, 2, 3, 4, 5]


def test_appending_the_same_entry_id_again_keeps_one_entry(case: StoreCase) -> None:
    job = new_job()
    case.store.append(entry(job, 1))
    case.store.append(entry(job, 1))
    case.store.append(entry(job, 1, message="re-run", fields={"attempt": 2}))

    entries = case.store.read(job, 10).entries

    assert len(entries) == 1
    assert entries[0].message == "re-run"
    assert entries[0].fields == {"attempt": 2}
    assert len(case.stored_items(job)) == 1


def test_entries_of_other_jobs_are_not_mixed_in(case: StoreCase) -> None:
    job, other = new_job(), new_job()
    for n in range(3):
        case.store.append(entry(job, n))
        case.store.append(entry(other, n, message=f"other {n}"))

    for wanted in (job, other):
        entries = [item for page in read_all(case.store, wanted, 2) for item in page]
        assert [item.transaction_id for item in entries] == [wanted] * 3


def test_unknown_job_reads_as_an_empty_page(case: StoreCase) -> None:
    # First read of a fresh store: for Table Storage the table does not exist yet.
    assert case.store.read(new_job(), 10).model_dump() == {"entries": [], "next_cursor": None}
    case.store.append(entry(new_job(), 1))
    assert case.store.read(new_job(), 10).entries == []


def test_keys_with_characters_storage_refuses_round_trip(case: StoreCase) -> None:
    job = "job/with#odd?chars\\and%percent"
    written = [entry(job, n, entry_id=f"2030-{n}/step#{n}?") for n in range(3)]
    for item in written:
        case.store.append(item)

    pages = read_all(case.store, job, 2)

    assert [item for page in pages for item in page] == written


def test_large_message_and_fields_round_trip(case: StoreCase) -> None:
    # Past Table Storage's 64 KiB per property: the store splits long texts.
    job = new_job()
    big = entry(job, 1, message="m" * 70_000, fields={"body": "🙂" * 40_000, "n": 1})
    case.store.append(big)

    assert case.store.read(job, 1).entries == [big]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda cursor: cursor[:-2], id="truncated"),
        pytest.param(
            lambda cursor: cursor[:-4] + ("AAAA" if cursor[-4:] != "AAAA" else "BBBB"), id="altered"
        ),
        pytest.param(lambda cursor: "not a cursor!", id="garbage"),
        pytest.param(lambda cursor: "", id="empty"),
        pytest.param(lambda cursor: cursor + "x" * 5000, id="oversized"),
    ],
)
def test_a_tampered_cursor_is_refused(case: StoreCase, tamper: Callable[[str], str]) -> None:
    job = new_job()
    for n in range(3):
        case.store.append(entry(job, n))
    cursor = case.store.read(job, 1).next_cursor
    assert cursor is not None

    with pytest.raises(InvalidCursor):
        case.store.read(job, 1, tamper(cursor))


def test_a_cursor_of_another_job_is_refused(case: StoreCase) -> None:
    job = new_job()
    for n in range(3):
        case.store.append(entry(job, n))
    cursor = case.store.read(job, 1).next_cursor
    assert cursor is not None

    with pytest.raises(InvalidCursor):
        case.store.read(new_job(), 1, cursor)


def test_a_cursor_that_was_edited_to_skip_ahead_is_refused(case: StoreCase) -> None:
    job = new_job()
    for n in range(3):
        case.store.append(entry(job, n))
    cursor = case.store.read(job, 1).next_cursor
    assert cursor is not None
    position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    position["after"] = "z"  # past every entry, keeping the check of the original position
    forged = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")

    with pytest.raises(InvalidCursor, match="cursor"):
        case.store.read(job, 1, forged)


@pytest.mark.parametrize("limit", [0, -1, MAX_READ_LIMIT + 1])
def test_a_limit_out_of_range_is_a_value_error(case: StoreCase, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        case.store.read(new_job(), limit)


def test_fields_are_stored_as_written_deep_and_odd_keys_included(case: StoreCase) -> None:
    # The log keeps the app's own fields and the user's log.append fields verbatim: nothing
    # walks arbitrary keys (what is shown of a target's answer is decided where it is made).
    job = new_job()
    fields = {"url": "?a" * 2000, "Authorization": "user data", "nested": [[[{"k": "v"}]]]}
    case.store.append(entry(job, 1, fields=fields))
    assert case.store.read(job, 10).entries[0].fields == fields


# -- append_with_retry against a store that is down -------------------------------------------


class CountingLog:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.appends = 0

    def append(self, item: JobLogEntry) -> None:
        self.appends += 1
        self.inner.append(item)

    def read(self, transaction_id: str, limit: int, cursor: str | None = None) -> Any:
        return self.inner.read(transaction_id, limit, cursor)


def _unreachable_store(kind: str) -> Store:
    port = free_port()  # nothing listens there: every connect is refused at once
    if kind == "table":
        return TableJobLog.open(
            TableEndpoint(
                connection_string=f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};TableEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
            ),
            "joblog",
        )
    return CosmosJobLog(f"https://127.0.0.1:{port}", "scheduler", "joblog", key="a2V5")


@pytest.mark.parametrize("kind", ["table", "cosmos"])
def test_append_with_retry_reports_an_outage_after_bounded_attempts(kind: str) -> None:
    store = _unreachable_store(kind)
    log = CountingLog(store)
    sleeps: list[float] = []
    started = time.monotonic()

    try:
        error = append_with_retry(log, entry(new_job(), 1), attempts=3, sleep=sleeps.append)
    finally:
        store.close()

    assert error is not None
    assert "after 3 attempts" in error
    assert log.appends == 3
    assert sleeps == [0.2, 0.4]
    assert time.monotonic() - started < 60


def test_append_with_retry_stores_on_a_healthy_store(case: StoreCase) -> None:
    job = new_job()
    assert append_with_retry(case.store, entry(job, 1), sleep=lambda _: None) is None
    assert len(case.store.read(job, 10).entries) == 1


def test_append_with_retry_does_not_retry_a_missing_configuration() -> None:
    log = open_job_log(settings_for(), {})
    sleeps: list[float] = []

    error = append_with_retry(log, entry(new_job(), 1), sleep=sleeps.append)

    assert error is not None
    assert JobLogNotConfigured.__name__ in error
    assert sleeps == []
    with pytest.raises(JobLogNotConfigured):
        log.read(new_job(), 10)


# -- choosing the store --------------------------------------------------------------------------


@pytest.fixture
def fresh_factory() -> Iterator[None]:
    close_job_logs()
    yield
    close_job_logs()


def settings_for(**values: Any) -> SchedulerSettings:
    """Settings from `values` alone, whatever the environment of the test run holds."""
    base: dict[str, Any] = {
        "cosmos_endpoint": "",
        "cosmos_key": "",
        "AzureWebJobsStorage": values.pop("azure_web_jobs_storage", ""),
    }
    return SchedulerSettings.model_validate({**base, **values})


@pytest.mark.usefixtures("fresh_factory")
def test_factory_uses_table_storage_on_azure_web_jobs_storage(azurite: AzuriteService) -> None:
    settings = settings_for(
        azure_web_jobs_storage=azurite.connection_string, job_table="factorytable"
    )

    store = open_job_log(settings, {})
    job = new_job()
    store.append(entry(job, 1))

    assert isinstance(store, TableJobLog)
    assert store.table_name == "factorytable"
    assert open_job_log(settings, {}) is store
    assert [item.fields for item in store.read(job, 10).entries] == [{"n": 1}]


@pytest.mark.usefixtures("fresh_factory")
def test_factory_uses_cosmos_when_an_endpoint_is_set(
    azurite: AzuriteService, cosmos_server: CosmosService
) -> None:
    settings = settings_for(
        azure_web_jobs_storage=azurite.connection_string,
        cosmos_endpoint=cosmos_server.endpoint,
        cosmos_key=cosmos_server.key,
        cosmos_container="factorycontainer",
    )

    store = open_job_log(settings, {})
    job = new_job()
    store.append(entry(job, 1, fields={"n": 1}))

    assert isinstance(store, CosmosJobLog)
    assert store.container_name == "factorycontainer"
    assert open_job_log(settings, {}) is store
    assert store.read(job, 10).entries[0].fields == {"n": 1}


@pytest.mark.usefixtures("fresh_factory")
@pytest.mark.parametrize("kind", ["table", "cosmos"])
def test_threads_opening_the_log_at_once_share_one_store(
    kind: str, request: pytest.FixtureRequest
) -> None:
    name = f"threads{uuid.uuid4().hex[:12]}"
    if kind == "table":
        azurite: AzuriteService = request.getfixturevalue("azurite")
        settings = settings_for(azure_web_jobs_storage=azurite.connection_string, job_table=name)
    else:
        cosmos: CosmosService = request.getfixturevalue("cosmos_server")
        settings = settings_for(
            cosmos_endpoint=cosmos.endpoint, cosmos_key=cosmos.key, cosmos_container=name
        )
    job = new_job()

    def open_and_append(n: int) -> JobLog:
        store = open_job_log(settings, {})
        store.append(entry(job, n))
        return store

    with ThreadPoolExecutor(max_workers=8) as pool:
        stores = list(pool.map(open_and_append, range(16)))

    assert all(store is stores[0] for store in stores)
    assert [item.fields["n"] for item in stores[0].read(job, 100).entries] == list(range(16))


def test_an_identity_based_table_store_is_made_without_any_network_call() -> None:
    # Only constructed: a token request would go to the metadata endpoint, off this machine.
    store = TableJobLog.open(
        TableEndpoint(
            table_service_uri="https://account.table.core.windows.net/",
            client_id="00000000-0000-0000-0000-000000000001",
        ),
        "joblog",
    )
    try:
        assert store.table_name == "joblog"
    finally:
        store.close()


def test_factory_reads_the_identity_based_storage_settings() -> None:
    environ = {
        STORAGE_TABLE_URI.lower(): "https://account.table.core.windows.net/",
        STORAGE_CLIENT_ID: "00000000-0000-0000-0000-000000000001",
    }
    config = job_log_config(settings_for(), environ)

    assert config.kind == "table"
    assert config.table == TableEndpoint(
        table_service_uri="https://account.table.core.windows.net/",
        client_id="00000000-0000-0000-0000-000000000001",
    )
    account_only = job_log_config(settings_for(), {"AzureWebJobsStorage__accountName": "acct"})
    assert account_only.table is not None
    assert account_only.table.table_service_uri == "https://acct.table.core.windows.net"


def test_factory_configs_do_not_show_secrets() -> None:
    config = job_log_config(settings_for(cosmos_endpoint="https://x", cosmos_key="s3cret"), {})
    assert "s3cret" not in repr(config)


@pytest.mark.usefixtures("fresh_factory")
def test_factory_turns_an_unusable_setting_into_a_reported_error() -> None:
    log = open_job_log(settings_for(azure_web_jobs_storage="Nonsense=1"), {})

    error = append_with_retry(log, entry(new_job(), 1), sleep=lambda _: None)

    assert error is not None
    assert "cannot be opened" in error


# -- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "UseDevelopmentStorage=true",
        "usedevelopmentstorage=TRUE;",
        " UseDevelopmentStorage = true ;",
    ],
)
def test_development_storage_expands_to_azurite(value: str) -> None:
    expanded = expand_development_storage(value)
    assert f"AccountKey={AZURITE_KEY}" in expanded
    assert f"TableEndpoint=http://127.0.0.1:10002/{AZURITE_ACCOUNT};" in expanded
    client = TableClient.from_connection_string(expanded, table_name="joblog")
    assert client.url.startswith("http://127.0.0.1:10002")


def test_a_development_storage_proxy_is_honoured() -> None:
    expanded = expand_development_storage(
        "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.2"
    )
    assert f"TableEndpoint=http://127.0.0.2:10002/{AZURITE_ACCOUNT};" in expanded


def test_a_real_connection_string_is_left_alone() -> None:
    value = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=x"
    assert expand_development_storage(value) == value


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("https://127.0.0.1:8081", True),
        ("https://127.1.2.3", True),
        ("https://[::1]:8081/", True),
        ("https://localhost:8081/", True),
        ("https://account.documents.azure.com:443/", False),
        ("https://10.0.0.1", False),
        ("https://127.0.0.1.example.com", False),
    ],
)
def test_only_loopback_endpoints_count_as_loopback(endpoint: str, loopback: bool) -> None:
    assert is_loopback_endpoint(endpoint) is loopback


def test_a_cursor_round_trips_for_its_own_job_only() -> None:
    cursor = encode_cursor("job-1", "20300102T030405.123456Z-001")
    assert decode_cursor("job-1", cursor) == "20300102T030405.123456Z-001"
    assert not set(cursor) & set("=/+")  # URL-safe as it is
    with pytest.raises(InvalidCursor):
        decode_cursor("job-2", cursor)


@pytest.mark.parametrize("value", ["plain-id", "a/b\\c#d?e%f", "tab\there", "\x7f\x9f", "é𝄞"])
def test_storage_keys_escape_reversibly(value: str) -> None:
    key = storage_key(value)
    assert not set(key) & set("/\\#?\t\x7f\x9f")
    assert from_storage_key(key) == value


def test_an_entry_too_large_for_table_storage_is_refused_at_once(azurite: AzuriteService) -> None:
    store = TableJobLog.open(TableEndpoint(connection_string=azurite.connection_string), "toolarge")
    huge = entry(new_job(), 1, fields={"body": "x" * 600_000})
    sleeps: list[float] = []

    try:
        with pytest.raises(ValueError, match="too large"):
            store.append(huge)
        error = append_with_retry(store, huge, sleep=sleeps.append)
    finally:
        store.close()

    assert error is not None
    assert "too large" in error
    assert sleeps == []  # retrying cannot make it fit


@pytest.mark.parametrize(
    ("environ", "reads_environment"),
    [
        ({"PATH": "/usr/bin", "HOME": "/root"}, False),
        ({"HTTPS_PROXY": "http://proxy.example:3128"}, True),
        ({"https_proxy": "http://proxy.example:3128"}, True),
        ({"REQUESTS_CA_BUNDLE": "/etc/ssl/corp.pem"}, True),
    ],
)
def test_storage_clients_read_proxies_and_ca_bundles_only_when_some_are_set(
    environ: dict[str, str], reads_environment: bool
) -> None:
    options = client_options(environ)
    assert options["session"].trust_env is reads_environment
    assert options["read_timeout"] == 5


def test_storage_clients_keep_a_connection_for_each_of_many_threads(
    azurite: AzuriteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests keeps 10 connections per host: 32 threads on one client, their requests sent
    # together, would open (and drop) a new connection for every request beyond them, round
    # after round. Kept, they are opened once: at most one per thread over all the rounds.
    store = TableJobLog.open(TableEndpoint(connection_string=azurite.connection_string), "pooled")
    job = new_job()
    store.append(entry(job, 0))
    opened: list[int] = []
    connect = urllib3.connection.HTTPConnection.connect

    def counted(connection: urllib3.connection.HTTPConnection) -> None:
        opened.append(1)
        connect(connection)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", counted)
    together = threading.Barrier(32)

    def append(n: int) -> None:
        together.wait(timeout=30)
        store.append(entry(job, n))

    with ThreadPoolExecutor(max_workers=32) as pool:
        for round_number in range(5):
            list(pool.map(append, range(1 + 32 * round_number, 33 + 32 * round_number)))
    store.close()
    assert len(opened) <= 32


def _established_connections_to(azurite: AzuriteService) -> int:
    """Open TCP connections on this machine whose far end is Azurite's port."""
    port = urlsplit(azurite.table_endpoint).port
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                remote, state = row.split()[2], row.split()[3]
                if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count
