"""The benchmarks' instruments count exactly: the loopback receiver notes every call, the Table
request log lists every request and changes none, the peer scheduler fires each job once, and
an attempt run in-process is the activity's own (nothing timed here)."""

import math
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import TableClient, UpdateMode
from pytest_httpserver import HTTPServer

from benchmarks.peer_scheduler import PeerScheduler
from delivery.prompts.http_call import TRANSACTION_HEADER
from tests.support.arrival_receiver import ArrivalReceiver
from tests.support.attempts import first_attempt, run_one_attempt
from tests.support.scheduler import Scheduler
from tests.support.services import AzuriteService
from tests.support.table_requests import TableRequestLog


def test_the_receiver_notes_each_call_with_its_transaction_id(tmp_path: Path) -> None:
    sent = ["a", "b", "a", "c", "a", ""]
    with ArrivalReceiver(tmp_path) as receiver, httpx.Client(trust_env=False) as client:
        before = time.time()
        for transaction_id in sent:
            headers = {TRANSACTION_HEADER: transaction_id} if transaction_id else {}
            client.post(receiver.url, json={"n": 1}, headers=headers).raise_for_status()
        client.get(receiver.url + "/elsewhere").raise_for_status()
        after = time.time()

        arrivals = receiver.arrivals()
        assert [arrival.transaction_id for arrival in arrivals] == [*sent, ""]
        assert all(before <= arrival.at <= after for arrival in arrivals)
        assert [a.at for a in arrivals] == sorted(a.at for a in arrivals)
        assert receiver.calls() == Counter({"a": 3, "b": 1, "c": 1, "": 2})
        assert receiver.count() == 7
        receiver.reset()
        assert receiver.count() == 0
        assert receiver.arrivals() == []


def test_the_table_request_log_lists_each_request_and_forwards_it_unchanged(
    azurite: AzuriteService,
) -> None:
    with TableRequestLog(azurite) as log:
        table = TableClient.from_connection_string(log.connection_string, table_name="proxied")
        table.create_table()
        table.create_entity({"PartitionKey": "p", "RowKey": "r", "text": "first"})
        read = table.get_entity("p", "r")
        table.update_entity(
            {"PartitionKey": "p", "RowKey": "r", "text": "second"},
            mode=UpdateMode.REPLACE,
            etag=read.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
        with pytest.raises(ResourceModifiedError):  # Azurite's 412 comes back as it was
            table.update_entity(
                {"PartitionKey": "p", "RowKey": "r", "text": "stale"},
                mode=UpdateMode.REPLACE,
                etag=read.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        rows = list(table.query_entities("PartitionKey eq 'p'"))
        table.submit_transaction(
            [
                ("upsert", {"PartitionKey": "p", "RowKey": "a"}, {"mode": UpdateMode.REPLACE}),
                ("delete", {"PartitionKey": "p", "RowKey": "r"}),
            ]
        )
        table.close()

        assert [r.describe() for r in log.requests()] == [
            "POST Tables -> 201",
            "POST proxied entity -> 201",
            "GET proxied entity -> 200",
            "PUT proxied entity (If-Match) -> 204",
            "PUT proxied entity (If-Match) -> 412",
            "GET proxied query -> 200",
            "POST $batch of 2 [PUT proxied entity, DELETE proxied entity] -> 202",
        ]
    assert [row["text"] for row in rows] == ["second"]
    direct = TableClient.from_connection_string(azurite.connection_string, table_name="proxied")
    assert [row["RowKey"] for row in direct.list_entities()] == ["a"]
    direct.delete_table()
    direct.close()


def test_the_peer_scheduler_fires_each_job_once_and_empties_its_store(tmp_path: Path) -> None:
    with ArrivalReceiver(tmp_path) as receiver:
        instant = math.ceil(time.time() + 2)
        with PeerScheduler(tmp_path / "jobs.sqlite") as peer:
            ids = peer.add(receiver.url, datetime.fromtimestamp(instant, UTC), 20)
            deadline = time.time() + 30
            while (receiver.count() < 20 or peer.stored_jobs()) and time.time() < deadline:
                time.sleep(0.1)
            assert peer.stored_jobs() == 0
        assert receiver.calls() == dict.fromkeys(ids, 1)
        assert min(arrival.at for arrival in receiver.arrivals()) >= instant


async def test_an_attempt_run_in_process_is_the_activitys_and_fires_once(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    transaction_id = await scheduler.accepted(
        "http.call", {"method": "POST", "url": httpserver.url_for("/hook"), "json": {"n": 1}}
    )
    order = first_attempt(scheduler.job_store, transaction_id)

    first = run_one_attempt(order)
    again = run_one_attempt(order)  # a re-run of the same attempt: its outcome stands

    assert (first.state, first.attempt) == ("succeeded", 1)
    assert (again.state, again.attempt) == ("succeeded", 1)
    assert len(httpserver.log) == 1
    assert httpserver.log[0][0].headers[TRANSACTION_HEADER] == transaction_id
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
    assert [attempt["attempt"] for attempt in status["attempt_history"]] == [1]
