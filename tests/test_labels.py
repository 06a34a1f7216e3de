"""Labels: accepted on create, checked strictly, part of the request's fingerprint, shown."""

from datetime import timedelta
from typing import Any

import pytest

from scheduling.labels import InvalidLabelFilter, parse_label_filter
from scheduling.timing import format_utc
from tests.support.scheduler import START, Scheduler
from tests.test_http_api import assert_problem

LOG = {"message": "m"}


def job(labels: Any = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exec_at": format_utc(START + timedelta(hours=1)),
        "prompt_type": "log.append",
        "payload": LOG,
        **more,
    }
    if labels is not None:
        body["labels"] = labels
    return body


async def test_labels_are_shown_in_status_and_listing(scheduler: Scheduler) -> None:
    reply = await scheduler.api.post(
        "/api/schedule", job({"tenant": "acme", "campaign": "spring-2027"})
    )
    assert reply.status == 202, reply.json()
    transaction_id = reply.json()["transaction_id"]

    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["labels"] == {"campaign": "spring-2027", "tenant": "acme"}
    (listed,) = (await scheduler.api.get("/api/schedule")).json()["jobs"]
    assert listed["labels"] == {"campaign": "spring-2027", "tenant": "acme"}


async def test_a_job_without_labels_shows_an_empty_map(scheduler: Scheduler) -> None:
    transaction_id = await scheduler.accepted("log.append", LOG)
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["labels"] == {}


@pytest.mark.parametrize(
    ("labels", "location"),
    [
        ({"Tenant": "acme"}, ["labels", "Tenant", "[key]"]),
        ({"-tenant": "acme"}, ["labels", "-tenant", "[key]"]),
        ({"tenant": ""}, ["labels", "tenant"]),
        ({"tenant": "a/b"}, ["labels", "tenant"]),
        ({"tenant": "a=b"}, ["labels", "tenant"]),
        ({"t" * 64: "acme"}, ["labels", "t" * 64, "[key]"]),
        ({"tenant": "v" * 64}, ["labels", "tenant"]),
        ({"tenant": 7}, ["labels", "tenant"]),
        ({f"k{n}": "v" for n in range(11)}, ["labels"]),
        (["tenant=acme"], ["labels"]),
    ],
)
async def test_a_bad_label_is_a_422_naming_it(
    scheduler: Scheduler, labels: Any, location: list[str]
) -> None:
    reply = await scheduler.api.post("/api/schedule", job(labels))
    problem = assert_problem(reply, 422)
    assert location in [error["loc"] for error in problem["errors"]]
    assert scheduler.orchestrations_started() == []


async def test_ten_labels_of_the_longest_form_are_taken(scheduler: Scheduler) -> None:
    labels = {f"k{n}" + "a" * 61: "V" * 63 for n in range(10)}
    reply = await scheduler.api.post("/api/schedule", job(labels))
    assert reply.status == 202, reply.json()


async def test_labels_are_part_of_the_idempotency_fingerprint(scheduler: Scheduler) -> None:
    headers = {"Idempotency-Key": "labels-1"}
    first = await scheduler.api.request(
        "POST", "/api/schedule", json_body=job({"a": "1", "b": "2"}), headers=headers
    )
    assert first.status == 202
    # The same labels in another order are the same request.
    again = await scheduler.api.request(
        "POST", "/api/schedule", json_body=job({"b": "2", "a": "1"}), headers=headers
    )
    assert again.status == 202
    assert again.headers["idempotent-replayed"] == "true"
    other = await scheduler.api.request(
        "POST", "/api/schedule", json_body=job({"a": "1"}), headers=headers
    )
    assert_problem(other, 409)


def test_a_label_filter_is_key_equals_value() -> None:
    assert parse_label_filter("tenant=acme") == ("tenant", "acme")
    assert parse_label_filter("t.x_y-z=A:b.c_d-e") == ("t.x_y-z", "A:b.c_d-e")
    for bad in ("tenant", "=acme", "tenant=", "Tenant=acme", "tenant=a=b", "t-=a", "a=" + "v" * 64):
        with pytest.raises(InvalidLabelFilter):
            parse_label_filter(bad)


def test_the_filter_check_agrees_with_the_label_patterns() -> None:
    """The query's hand-written check against the body's patterns (an independent oracle),
    over every string of up to three characters of an alphabet with each kind of character."""
    import itertools
    import re

    from scheduling.labels import LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN

    alphabet = "aZ0.-_:=/ é"
    for size in range(4):
        for chars in itertools.product(alphabet, repeat=size):
            text = "".join(chars)
            key_ok = re.fullmatch(LABEL_KEY_PATTERN, text) is not None
            value_ok = re.fullmatch(LABEL_VALUE_PATTERN, text) is not None
            for filter_text, expected in ((f"{text}=v", key_ok), (f"k={text}", value_ok)):
                try:
                    parse_label_filter(filter_text)
                    taken = True
                except InvalidLabelFilter:
                    taken = False
                assert taken == expected, filter_text


async def _labelled(scheduler: Scheduler, labels: dict[str, str] | None, minutes: int = 60) -> str:
    body = job(labels)
    body["exec_at"] = format_utc(START + timedelta(minutes=minutes))
    reply = await scheduler.api.post("/api/schedule", body)
    assert reply.status == 202, reply.json()
    transaction_id: str = reply.json()["transaction_id"]
    return transaction_id


async def test_the_listing_filters_by_label_and_by_all_labels(scheduler: Scheduler) -> None:
    gold = await _labelled(scheduler, {"tenant": "a", "tier": "gold"})
    plain = await _labelled(scheduler, {"tenant": "a"})
    await _labelled(scheduler, {"tenant": "b", "tier": "gold"})
    await _labelled(scheduler, None)

    async def listed(query: str) -> set[str]:
        reply = await scheduler.api.get(f"/api/schedule?{query}")
        assert reply.status == 200, reply.json()
        return {job["transaction_id"] for job in reply.json()["jobs"]}

    assert await listed("label=tenant=a") == {gold, plain}
    assert await listed("label=tenant=a&label=tier=gold") == {gold}
    assert await listed("label=tier=gold&label=tenant=a") == {gold}
    assert await listed("label=tenant=c") == set()
    assert await listed("label=tenant=a&prompt_type=http.call") == set()
    later = format_utc(START + timedelta(minutes=61))
    assert await listed(f"label=tenant=a&from={later}") == set()


async def test_a_labelled_listing_pages_with_its_own_cursor(scheduler: Scheduler) -> None:
    ids = {await _labelled(scheduler, {"tenant": "a"}, minutes=60 + n) for n in range(3)}
    await _labelled(scheduler, {"tenant": "b"})
    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        reply = await scheduler.api.get(f"/api/schedule?label=tenant=a&limit=1{cursor}")
        body = reply.json()
        seen += [job["transaction_id"] for job in body["jobs"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
        # A cursor of a labelled listing is refused by the unlabelled one.
        other = await scheduler.api.get(f"/api/schedule?limit=1{cursor}")
        assert_problem(other, 400)
    assert sorted(seen) == sorted(ids)
    assert seen == sorted(seen)  # id order: the label index's


@pytest.mark.parametrize(
    "query", ["label=tenant", "label=Tenant=a", "label=a=b=c", "label=t%2Fx=a", "label=t=a%2F"]
)
async def test_a_bad_label_filter_is_a_400(scheduler: Scheduler, query: str) -> None:
    assert_problem(await scheduler.api.get(f"/api/schedule?{query}"), 400)


async def test_a_labelled_listing_reads_only_its_labels_rows(scheduler: Scheduler) -> None:
    """The label index is one partition a label: 30 jobs of another label are not read."""
    from blueprints.jobs import read_live
    from storage.job_store import DueRange

    ours = {await _labelled(scheduler, {"tenant": "a"}) for _ in range(2)}
    for _ in range(30):
        await _labelled(scheduler, {"tenant": "b"})
    records, token, read = await read_live(DueRange(labels=(("tenant", "a"),)), None, 100, None)
    assert {record.transaction_id for record in records} == ours
    assert read == 2
    assert token is None


async def test_an_ended_job_leaves_the_label_index(scheduler: Scheduler) -> None:
    transaction_id = await _labelled(scheduler, {"tenant": "a", "tier": "gold"})
    assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200
    for pair in (("tenant", "a"), ("tier", "gold")):
        entries, _ = scheduler.job_store.label_page(pair, None, 10, None)
        assert entries == []


async def test_a_job_that_ran_leaves_the_label_index(scheduler: Scheduler) -> None:
    transaction_id = await _labelled(scheduler, {"tenant": "a"})
    scheduler.host.run()
    scheduler.host.advance_to(START + timedelta(minutes=61))
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "succeeded"
    assert scheduler.job_store.label_page(("tenant", "a"), None, 10, None)[0] == []
    assert (await scheduler.api.get("/api/schedule?label=tenant=a")).json()["jobs"] == []


async def _failing_labelled_job(scheduler: Scheduler) -> str:
    """A job labelled tenant=a, due at START + 5 min, whose only attempt fails."""
    body = {
        "exec_at": format_utc(START + timedelta(minutes=5)),
        "prompt_type": "http.call",
        "payload": {"url": "http://127.0.0.1:9/hook"},  # nothing listens: it fails
        "labels": {"tenant": "a"},
    }
    reply = await scheduler.api.post("/api/schedule", body)
    assert reply.status == 202, reply.json()
    transaction_id: str = reply.json()["transaction_id"]
    return transaction_id


async def test_a_replayed_job_is_found_by_its_labels_again(scheduler: Scheduler) -> None:
    transaction_id = await _failing_labelled_job(scheduler)
    scheduler.host.run()
    scheduler.host.advance_to(START + timedelta(minutes=6))
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "failed"
    assert (await scheduler.api.get("/api/schedule?label=tenant=a")).json()["jobs"] == []

    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/replay")).status == 202
    listed = (await scheduler.api.get("/api/schedule?label=tenant=a")).json()["jobs"]
    assert [job["transaction_id"] for job in listed] == [transaction_id]


async def test_a_job_replayed_as_its_failed_attempt_ends_keeps_its_label_rows(
    scheduler: Scheduler,
) -> None:
    """A replay that lands between the failed attempt's record write and its dropping of the
    label rows: the replayed (live) job is still found, and cancelled, by its label."""
    import asyncio

    from blueprints import dependencies
    from tests.support.interleaving import interleaved, on_loop

    transaction_id = await _failing_labelled_job(scheduler)
    loop = asyncio.get_running_loop()
    answers = []

    def replay_and_hold() -> None:
        # The attempt has written `failed` and is about to drop the job's index rows. The
        # replayed run is moved to later, so that it stays live (and does not fail again).
        path = f"/api/schedule/{transaction_id}"
        answers.append(on_loop(loop, scheduler.api.post(f"{path}/replay")).status)
        later = {"exec_at": format_utc(START + timedelta(hours=2))}
        answers.append(on_loop(loop, scheduler.api.request("PATCH", path, json_body=later)).status)

    store = interleaved(scheduler.job_store, "unindex", replay_and_hold, when="before")
    with dependencies.overridden(job_store=lambda _settings: store):
        scheduler.host.run()
        await asyncio.to_thread(scheduler.host.advance_to, START + timedelta(minutes=6))

    assert answers == [202, 200], answers
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    assert status["state"] == "pending", status
    listed = (await scheduler.api.get("/api/schedule?label=tenant=a")).json()["jobs"]
    assert [job["transaction_id"] for job in listed] == [transaction_id]
    cancelled = (await scheduler.api.delete("/api/schedule?label=tenant=a")).json()
    assert cancelled["cancelled"] == 1, cancelled


async def test_a_replay_over_a_leftover_due_row_keeps_the_label_rows(scheduler: Scheduler) -> None:
    """The failed job's due row outlived it (its drop failed once): the replay drops that
    row, and only that row; the replayed job is still found by its label."""
    transaction_id = await _failing_labelled_job(scheduler)
    scheduler.host.run()
    scheduler.host.advance_to(START + timedelta(minutes=6))
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    assert stored.record.state == "failed"
    scheduler.job_store.index(stored.record)  # the row a failed drop left behind

    assert (await scheduler.api.post(f"/api/schedule/{transaction_id}/replay")).status == 202
    listed = (await scheduler.api.get("/api/schedule?label=tenant=a")).json()["jobs"]
    assert [job["transaction_id"] for job in listed] == [transaction_id]
