"""A batch's async writes: the same options from the environment as the sync clients, one
sign-in for all of a batch's tables."""

from storage.batch_writes import BatchWrites
from storage.job_store import TableJobStore
from storage.table_storage import AiohttpEnvironment, TableEndpoint, aiohttp_environment


def test_the_async_clients_take_the_proxy_and_ca_bundle_the_sync_clients_take() -> None:
    assert aiohttp_environment({}) == AiohttpEnvironment(proxies=False, ca_bundle=None)
    assert aiohttp_environment({"HTTPS_PROXY": "http://127.0.0.1:3128"}).proxies
    # requests' CA bundle (a TLS-inspecting proxy's root, say) is aiohttp's to verify with too.
    both = {"REQUESTS_CA_BUNDLE": "/etc/ca.pem", "CURL_CA_BUNDLE": "/x"}
    assert aiohttp_environment(both) == AiohttpEnvironment(proxies=False, ca_bundle="/etc/ca.pem")
    assert aiohttp_environment({"curl_ca_bundle": "/x"}).ca_bundle == "/x"


async def test_a_batch_on_a_managed_identity_signs_in_once_for_all_its_tables() -> None:
    endpoint = TableEndpoint(table_service_uri="https://account.table.core.windows.net")
    store = TableJobStore.open(endpoint, "jobs")
    try:
        async with BatchWrites(store) as writes:
            # No network call yet: the clients only hold their credential.
            tables = (writes._records, writes._due, writes._labels)
            assert len({id(table.credential) for table in tables}) == 1
            assert tables[0].credential is writes._credential
    finally:
        store.close()
