"""POST /api/schedule/batch against its oracle, the single create (POST /api/schedule).

Issue #24 and docs/bulk.md say a batch is its jobs created one by one: each job gets the
answer a single create of it would get (the same problem, or 202 new, or 202 replayed under
its key), the same job, and the same place in the listings. So hypothesis draws a mix of
jobs (valid and invalid ones, keyed ones, keys a single create used before, keys reused
inside the batch) and sends them as one batch to one scheduler, and one by one as single
creates (the key in the Idempotency-Key header) to another, fresh one on the same virtual
clock, and compares what each side answers and ends with: every answer, every job's status,
the listing and the label listings, the orchestrations started. The batch is then sent
again: its keyed jobs answer `existed`, as the same jobs, and start nothing.

The one documented difference: a job whose key an earlier job of the same batch has fails
(422 at `idempotency_key`) where a single create would replay or refuse it (409); the
single side does not send it.

A single create is sent as the project's own client (and httpx) sends JSON: compact UTF-8.
The job size limit is MAX_REQUEST_BYTES' floor (1 KiB) so that jobs on both sides of it are
cheap to draw.
"""

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import hypothesis
from hypothesis import strategies as st

from tests.support.app_client import AppClient, Reply
from tests.support.scheduler import Scheduler, running_scheduler
from tests.support.services import AzuriteService

MAX_JOB_BYTES = 1024

FEW_KEYS = ["k0", "k1", "k2"]
MANY_KEYS = [f"k{n}" for n in range(30)]
BAD_KEYS = ["has space", "", "x" * 256, "ключ"]
LABELS: list[dict[str, Any] | None] = [
    None,
    {"tenant": "acme"},
    {"tenant": "acme", "tier": "gold"},
    {"tier": "gold", "tenant": "acme"},  # the same labels in another order
    {"tier": "gold", "tenant": "umbrella"},
    {},
]
BAD_LABELS: list[Any] = [{"Tenant": "acme"}, {"tenant": "a/b"}, {"tenant": ""}, ["tenant=acme"]]
LABEL_FILTERS = ["tenant=acme", "tenant=umbrella", "tier=gold"]
# The clock of both sides stands at START, 2026-12-01T08:00:00Z.
WHEN: list[dict[str, Any]] = [
    {"exec_at": "2026-12-01T10:00:00Z"},
    {"exec_at": "2026-12-01T09:30:00+01:00"},
    {"delay": "90m"},
    {"delay": "PT2H"},
    {"cron": "*/15 * * * *"},
    {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris"},
]
BAD_WHEN: list[dict[str, Any]] = [
    {"exec_at": "2026-12-01T08:00:30Z"},  # under MIN_LEAD_SECONDS away
    {"exec_at": "2028-01-01T00:00:00Z"},  # past MAX_HORIZON_DAYS
    {"delay": "10s"},
    {"exec_at": "2026-12-01T10:00:00Z", "delay": "1h"},
    {"exec_at": "2026-12-01T10:00:00Z", "timezone": "Europe/Paris"},
    {"exec_at": "tomorrow"},
    {},
]
# Both 2026-12-01T10:00:00Z: one due minute, one partition of the due index.
CROWDED_WHEN: list[dict[str, Any]] = [{"exec_at": "2026-12-01T10:00:00Z"}, {"delay": "PT2H"}]
CROWDED_LABELS: list[dict[str, Any] | None] = [
    {"tenant": "acme"},
    {"tenant": "acme", "tier": "gold"},
]
# What else a job may ask for, shown in its status.
EXTRAS: list[dict[str, Any]] = [
    {},
    {},
    {"retry": {"max_attempts": 3, "initial_delay_seconds": 5}},
    {"callbacks": {"on_failure": "http://127.0.0.1:9/failed?token=t0k3n"}},
    {"flow_control": {"max_parallel": 2}},
]
WHEN_FIELDS = {"exec_at", "delay", "cron", "timezone"}
FLAWS = [
    "when",
    "labels",
    "no prompt_type",
    "no payload",
    "unknown prompt_type",
    "extra field",
    "bad payload",
    "refused url",
]
# Text as callers write it (ASCII, accented, CJK, emoji), now and then past the job limit.
SHORT_MESSAGES = st.text(alphabet="ab é中😀", min_size=1, max_size=12)
MESSAGES = SHORT_MESSAGES | st.text(alphabet="aé中😀", min_size=200, max_size=600)


@dataclass(frozen=True)
class Item:
    """One job: its create body, and the key it is sent with (none when None)."""

    body: dict[str, Any]
    key: str | None

    def in_batch(self) -> dict[str, Any]:
        return self.body if self.key is None else {**self.body, "idempotency_key": self.key}


@dataclass(frozen=True)
class Scenario:
    earlier: list[Item]  # single creates before the batch
    cancelled: frozenset[int]  # which of them are then deleted (if they were created)
    batch: list[Item]


@st.composite
def bodies(draw: st.DrawFn, crowded: bool, flawless: bool = False) -> dict[str, Any]:
    """A job's body, now and then with one flaw (never when `flawless`); `crowded`: due in
    one minute and labelled tenant=acme (their index rows share a partition)."""
    if draw(st.booleans()):
        prompt: dict[str, Any] = {
            "prompt_type": "log.append",
            "payload": {"message": draw(SHORT_MESSAGES if flawless else MESSAGES)},
        }
    else:
        path = draw(st.sampled_from(["/hook", "/hook/2", "/other?x=1"]))
        prompt = {
            "prompt_type": "http.call",
            "payload": {"url": f"http://127.0.0.1:9{path}", "json": {"n": draw(st.integers(0, 3))}},
        }
    body = {**draw(st.sampled_from(CROWDED_WHEN if crowded else WHEN)), **prompt}
    labels = draw(st.sampled_from(CROWDED_LABELS if crowded else LABELS))
    if labels is not None:
        body["labels"] = labels
    body.update(draw(st.sampled_from(EXTRAS)))
    flaw = None if flawless else draw(st.sampled_from([None] * 6 + FLAWS))
    if flaw == "when":
        body = {k: v for k, v in body.items() if k not in WHEN_FIELDS}
        body.update(draw(st.sampled_from(BAD_WHEN)))
    elif flaw == "labels":
        body["labels"] = draw(st.sampled_from(BAD_LABELS))
    elif flaw == "no prompt_type":
        del body["prompt_type"]
    elif flaw == "no payload":
        del body["payload"]
    elif flaw == "unknown prompt_type":
        body["prompt_type"] = "sms.send"
    elif flaw == "extra field":
        body["priority"] = 1
    elif flaw == "bad payload":
        body["payload"] = {**body["payload"], "message": "", "url": 7}
    elif flaw == "refused url":
        body["prompt_type"] = "http.call"
        body["payload"] = {"url": "http://10.1.2.3/hook"}
    return body


def items(keys: list[str], crowded: bool) -> st.SearchStrategy[Item]:
    key = st.sampled_from([None, *keys]) | st.sampled_from([*keys, *BAD_KEYS])
    return st.builds(Item, bodies(crowded), key)


@st.composite
def scenarios(
    draw: st.DrawFn, jobs: tuple[int, int], keys: list[str], crowded: bool = False
) -> Scenario:
    """Some keyed single creates, then the batch; a job of it may repeat an earlier body
    (a retry) with the same key or another one. `crowded`: the batch starts with 101 valid
    jobs of one due minute and label (keys of their own, or none)."""
    earlier = draw(st.lists(st.builds(Item, bodies(crowded), st.sampled_from(keys)), max_size=3))
    cancelled = draw(st.frozensets(st.integers(0, len(earlier) - 1))) if earlier else frozenset()
    batch: list[Item] = []
    if crowded:
        for n in range(101):
            key = f"crowd-{n}" if draw(st.booleans()) else None
            batch.append(Item(draw(bodies(crowded, flawless=True)), key))
    for _ in range(draw(st.integers(*jobs))):
        choice = draw(st.integers(0, 4))
        seen = earlier + batch
        if choice == 0 and seen:  # a retry
            batch.append(draw(st.sampled_from(seen)))
        elif choice == 1 and seen:  # the same job under another key
            batch.append(Item(draw(st.sampled_from(seen)).body, draw(st.sampled_from(keys))))
        elif choice == 2 and earlier:  # a key a single create used, for another job
            batch.append(Item(draw(bodies(crowded)), draw(st.sampled_from(earlier)).key))
        else:
            batch.append(draw(items(keys, crowded)))
    return Scenario(earlier, cancelled, batch)


def compact(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def too_large(item: Item) -> bool:
    """Over the single create's body limit: refused (413) before anything in it is read."""
    return len(compact(item.body)) > MAX_JOB_BYTES


def duplicate_in_batch(batch: list[Item], index: int) -> bool:
    """The batch's own rule: a job whose key an earlier (read) job of it has fails."""
    key = batch[index].key
    earlier = {item.key for item in batch[:index] if not too_large(item)}
    return key is not None and not too_large(batch[index]) and key in earlier


def name_of(index: int, item: Item, where: str) -> str:
    """What a job is called on both sides: its key, or where it was asked for."""
    return f"key {item.key}" if item.key is not None else f"{where} {index}"


def names_of(scenario: Scenario) -> list[str]:
    return [name_of(i, item, "earlier") for i, item in enumerate(scenario.earlier)] + [
        name_of(i, item, "batch") for i, item in enumerate(scenario.batch)
    ]


async def single_create(api: AppClient, item: Item) -> dict[str, Any]:
    """A single create's answer as a batch result says it (without its index)."""
    headers = {"Content-Type": "application/json"}
    if item.key is not None:
        headers["Idempotency-Key"] = item.key
    reply: Reply = await api.request(
        "POST", "/api/schedule", body=compact(item.body), headers=headers
    )
    body = reply.json()
    if reply.status == 202:
        replayed = reply.headers.get("idempotent-replayed") == "true"
        return {"result": "existed" if replayed else "created", "job": body, "problem": None}
    assert 400 <= reply.status < 500, (reply.status, body)
    return {"result": "failed", "job": None, "problem": body}


async def create_earlier(scheduler: Scheduler, scenario: Scenario) -> list[dict[str, Any]]:
    answers = []
    for index, item in enumerate(scenario.earlier):
        answer = await single_create(scheduler.api, item)
        if index in scenario.cancelled and answer["result"] == "created":
            transaction_id = answer["job"]["transaction_id"]
            assert (await scheduler.api.delete(f"/api/schedule/{transaction_id}")).status == 200
        answers.append(answer)
    return answers


@dataclass
class Side:
    """What one scheduler answered and ended with, its jobs by name."""

    answers: list[dict[str, Any]]
    statuses: dict[str, dict[str, Any]]
    listings: dict[str, Counter[str]]
    started: Counter[str]


async def listed(api: AppClient, query: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    cursor = ""
    while True:
        reply = await api.get(f"/api/schedule?limit=100{query}{cursor}")
        assert reply.status == 200, reply.json()
        page = reply.json()
        jobs += page["jobs"]
        if page["next_cursor"] is None:
            return jobs
        cursor = f"&cursor={page['next_cursor']}"


async def ended_with(scheduler: Scheduler, answers: list[dict[str, Any]], names: list[str]) -> Side:
    by_id: dict[str, str] = {}
    for answer, name in zip(answers, names, strict=True):
        if answer["job"] is not None:
            transaction_id = answer["job"]["transaction_id"]
            assert by_id.setdefault(transaction_id, name) == name, (transaction_id, name)
    statuses = {}
    for transaction_id, name in by_id.items():
        reply = await scheduler.api.get(f"/api/schedule/{transaction_id}/status")
        assert reply.status == 200, reply.json()
        status = reply.json()
        assert status.pop("transaction_id") == transaction_id
        statuses[name] = status
    listings: dict[str, Counter[str]] = {}
    for query in ["", *(f"&label={pair}" for pair in LABEL_FILTERS)]:
        rows = await listed(scheduler.api, query)
        listings[query] = Counter(
            json.dumps({**row, "transaction_id": by_id.get(row["transaction_id"])}, sort_keys=True)
            for row in rows
        )
    started = Counter(by_id.get(i, i) for i in scheduler.orchestrations_started())
    # Nothing half-created: every job answered as accepted has its orchestration, once.
    assert started == Counter(set(by_id.values())), started
    return Side(answers, statuses, listings, started)


async def by_batch(azurite: AzuriteService, scenario: Scenario) -> Side:
    with running_scheduler(azurite, max_request_bytes=MAX_JOB_BYTES) as scheduler:
        before = await create_earlier(scheduler, scenario)
        jobs = [item.in_batch() for item in scenario.batch]
        reply = await scheduler.api.post("/api/schedule/batch", {"jobs": jobs})
        assert reply.status == 200, reply.json()
        outcome = reply.json()
        results = outcome["results"]
        assert [result["index"] for result in results] == list(range(len(jobs)))
        counts = Counter(result["result"] for result in results)
        assert (outcome["created"], outcome["existed"], outcome["failed"]) == (
            counts["created"],
            counts["existed"],
            counts["failed"],
        )
        side = await ended_with(scheduler, before + results, names_of(scenario))

        # Sent again (its answer lost): each keyed job is the job it was and nothing keyed
        # starts again; what failed fails the same way.
        started = len(scheduler.orchestrations_started())
        again = await scheduler.api.post("/api/schedule/batch", {"jobs": jobs})
        assert again.status == 200, again.json()
        new = 0
        for item, first, second in zip(
            scenario.batch, results, again.json()["results"], strict=True
        ):
            if first["result"] == "failed":
                assert second == first, item
            elif item.key is None:
                assert second["result"] == "created", (item, second)
                new += 1
            else:
                assert second["result"] == "existed", (item, second)
                assert second["job"] == first["job"], item
        assert len(scheduler.orchestrations_started()) == started + new
    return side


async def one_by_one(azurite: AzuriteService, scenario: Scenario) -> Side:
    """The oracle: each job of the batch as a single create, in order; a job the batch
    refuses as a duplicate of an earlier one's key is answered so, and not sent."""
    with running_scheduler(azurite, max_request_bytes=MAX_JOB_BYTES) as scheduler:
        before = await create_earlier(scheduler, scenario)
        answers = []
        for index, item in enumerate(scenario.batch):
            if duplicate_in_batch(scenario.batch, index):
                answers.append({"result": "failed", "job": None, "problem": "duplicate key"})
            else:
                answers.append(await single_create(scheduler.api, item))
        return await ended_with(scheduler, before + answers, names_of(scenario))


def comparable(answer: dict[str, Any], item: Item) -> dict[str, Any]:
    """An answer but for what differs by construction: a problem's detail (prose that may
    say "a job of a batch"), a job's link, and an unkeyed job's id (new on each side; a
    keyed job's is its key's, on both)."""
    if answer["problem"] is not None:
        return {"result": answer["result"], "problem": {**answer["problem"], "detail": None}}
    job = {name: value for name, value in answer["job"].items() if name != "status_url"}
    if item.key is None:
        job.pop("transaction_id")
    return {"result": answer["result"], "job": job}


def assert_same(scenario: Scenario, batch: Side, singles: Side) -> None:
    asked = scenario.earlier + scenario.batch
    for index, (ours, oracle) in enumerate(zip(batch.answers, singles.answers, strict=True)):
        item = asked[index]
        if oracle["problem"] == "duplicate key":
            hypothesis.event("duplicate key in the batch")
            assert ours["result"] == "failed", item
            assert ours["problem"]["status"] == 422, (item, ours)
            assert [e["loc"] for e in ours["problem"]["errors"]] == [["idempotency_key"]], item
            continue
        status = oracle["problem"]["status"] if oracle["problem"] else 202
        hypothesis.event(f"{oracle['result']} {status}")
        assert comparable(ours, item) == comparable(oracle, item), (index, item)
    assert batch.statuses == singles.statuses
    assert batch.listings == singles.listings
    assert batch.started == singles.started


@hypothesis.settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
@hypothesis.given(scenario=scenarios(jobs=(1, 7), keys=FEW_KEYS))
async def test_a_batch_is_its_jobs_created_one_by_one(
    azurite: AzuriteService, scenario: Scenario
) -> None:
    assert_same(scenario, await by_batch(azurite, scenario), await one_by_one(azurite, scenario))


@hypothesis.settings(
    max_examples=2,
    deadline=None,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.data_too_large],
)
@hypothesis.given(scenario=scenarios(jobs=(0, 30), keys=MANY_KEYS, crowded=True))
async def test_a_batch_past_one_transaction_and_one_round_of_starts_is_too(
    azurite: AzuriteService, scenario: Scenario
) -> None:
    """Over 100 jobs due in one minute with one label (more than one entity group
    transaction each), and more than 16 stores and starts at a time."""
    batch = await by_batch(azurite, scenario)
    assert_same(scenario, batch, await one_by_one(azurite, scenario))
    assert batch.listings["&label=tenant=acme"].total() > 100
