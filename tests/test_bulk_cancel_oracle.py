"""The filtered listing and the filtered bulk cancel against a brute-force oracle.

Hypothesis draws a small world of jobs (labels from a tiny alphabet so filters overlap,
both cheap prompt types, one-time and recurring, due times that share minutes and
instants, some already run, some deleted one by one, some with an attempt running) and a
filter (labels AND-ed, prompt type, `from`/`to` often equal to a job's due time), and a
small page and call bound so that cursors carry the work. The oracle is the filter applied
in the test to what it created, field by field; the app must list exactly those jobs,
cancel exactly those (a firing one reported, never cancelled), count each once, touch no
other job, and find nothing on a second pass; every job it left alone still runs.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import hypothesis
from hypothesis import strategies as st

from api.openapi import openapi_document
from blueprints import removing
from scheduling.job_record import JobRecord
from scheduling.timing import format_utc
from tests.support.scheduler import START, Scheduler, running_scheduler
from tests.support.services import AzuriteService

# Small alphabets, so that filters overlap: two keys (one with a dot), and values that differ
# only in case or hold every punctuation mark a value may.
KEYS = ("tenant", "t.x")
VALUES = ("a", "A", "a:b.c-d_e")
# Due times as seconds after START: several in one minute, some at one instant, one a
# fraction of a second after another (the index keys keep microseconds), one at a minute's
# last instant. The first two are due before the filter runs (RAN_BY).
DUE_SECONDS = (120, 150, 600, 600, 600.5, 659.999999, 660, 3600, 3600, 7200)
RAN_BY = START + timedelta(minutes=5)
# Recurring jobs fire at these minutes of every hour: 08:03 is before RAN_BY.
CRON_MINUTES = (3, 10, 40)
# A move must be a lead (60 s) ahead of the clock at RAN_BY.
MOVABLE_FROM = 6 * 60
EXAMPLES = 30


@dataclass
class Spec:
    labels: dict[str, str]
    prompt_type: str
    due: float  # seconds after START (one-time) or a minute of the hour (recurring)
    recurring: bool
    # Before the filter: "live", "deleted" (singly), "firing" (an attempt running), "moved"
    # (a one-time job PATCHed to `moved_to`), "paused" (a recurring job).
    fate: str
    single: bool  # created by POST /api/schedule rather than in the batch
    moved_to: float


@dataclass
class Filter:
    label_pairs: list[tuple[str, str]] = field(default_factory=list)
    prompt_type: str | None = None
    due_from: datetime | None = None
    due_to: datetime | None = None
    # The UTC offset the bounds are written with (the instant is the same).
    offset: timedelta = timedelta(0)

    def written(self, moment: datetime) -> str:
        return moment.astimezone(timezone(self.offset)).isoformat()

    def query(self) -> list[tuple[str, str]]:
        pairs = [("label", f"{key}={value}") for key, value in self.label_pairs]
        if self.prompt_type is not None:
            pairs.append(("prompt_type", self.prompt_type))
        if self.due_from is not None:
            pairs.append(("from", self.written(self.due_from)))
        if self.due_to is not None:
            pairs.append(("to", self.written(self.due_to)))
        return pairs

    def names(self, labels: dict[str, str], prompt_type: str, exec_at: datetime) -> bool:
        """The oracle: docs/bulk.md's filter, field by field (`from` and `to` inclusive)."""
        return (
            all(labels.get(key) == value for key, value in self.label_pairs)
            and self.prompt_type in (None, prompt_type)
            and (self.due_from is None or exec_at >= self.due_from)
            and (self.due_to is None or exec_at <= self.due_to)
        )


labels_drawn = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    recurring = draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else False
    prompt_type = "log.append" if recurring else draw(st.sampled_from(["log.append", "http.call"]))
    due = draw(st.sampled_from(CRON_MINUTES if recurring else DUE_SECONDS))
    fates = ["live", "live", "live", "deleted", "firing", "paused" if recurring else "moved"]
    return Spec(
        labels=draw(labels_drawn),
        prompt_type=prompt_type,
        due=due,
        recurring=recurring,
        fate=draw(st.sampled_from(fates)),
        single=draw(st.integers(0, 3)) == 0,
        moved_to=draw(st.sampled_from([s for s in DUE_SECONDS if s > MOVABLE_FROM])),
    )


def first_runs_at(spec: Spec) -> datetime:
    if spec.recurring:
        return START.replace(minute=int(spec.due))
    return START + timedelta(seconds=spec.due)


def moves(spec: Spec) -> bool:
    return spec.fate == "moved" and first_runs_at(spec) > RAN_BY


def exec_at_now(spec: Spec) -> datetime:
    """When the job is due once the clock is at RAN_BY: a recurring job that ran is due at
    its next hour; a one-time job keeps its time (run, retrying, or not yet due) unless it
    was moved."""
    if moves(spec):
        return START + timedelta(seconds=spec.moved_to)
    first = first_runs_at(spec)
    return first + timedelta(hours=1) if spec.recurring and first <= RAN_BY else first


def ended_by_then(spec: Spec) -> bool:
    """A one-time log.append due before RAN_BY has succeeded; an http.call has failed its
    first attempt and waits to retry (live); a recurring job runs again."""
    return not spec.recurring and spec.prompt_type == "log.append" and first_runs_at(spec) <= RAN_BY


@st.composite
def bound(draw: st.DrawFn, at: datetime, edges: list[datetime], inward: timedelta) -> Any:
    """A `from` (inward > 0) or `to` bound: none, at the anchor's due time, a microsecond
    inside or outside it, at (or a microsecond past) another job's, or anywhere."""
    kind = draw(st.sampled_from(["none"] * 3 + ["at"] * 3 + ["in", "out", "edge", "anywhere"]))
    if kind == "none":
        return None
    if kind == "edge":
        edge = draw(st.sampled_from(edges))
        return edge + draw(st.sampled_from([-1, 0, 1])) * abs(inward)
    if kind == "anywhere":
        return START + timedelta(seconds=draw(st.integers(0, 3 * 3600)))
    return {"at": at, "in": at - inward, "out": at + inward}[kind]


@st.composite
def filters(draw: st.DrawFn, jobs: list[Spec]) -> Filter:
    """A filter aimed at one of the live jobs (so that it names some): each part of it kept
    or not, its bounds often exactly at, or a microsecond either side of, a job's due time."""
    listed = [spec for spec in jobs if spec.fate != "deleted" and not ended_by_then(spec)]
    anchor = draw(st.sampled_from(listed or jobs))
    at = exec_at_now(anchor)
    edges = sorted({exec_at_now(spec) for spec in jobs} | {first_runs_at(spec) for spec in jobs})
    tick = timedelta(microseconds=1)
    own = sorted(anchor.labels.items())
    any_pair = st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES))
    # Mostly the anchor's own labels (so the filter names it), sometimes any.
    pair = st.integers(0, 3).flatmap(lambda n: st.sampled_from(own) if own and n else any_pair)
    chosen = Filter(
        label_pairs=draw(st.lists(pair, max_size=2 if own else draw(st.sampled_from([0, 0, 1])))),
        prompt_type=draw(st.sampled_from([None, None, anchor.prompt_type, "http.call"])),
        due_from=draw(bound(at, edges, tick)),
        due_to=draw(bound(at, edges, -tick)),
        offset=timedelta(minutes=draw(st.sampled_from([0, 60, -330, 14 * 60]))),
    )
    hypothesis.assume(chosen.query())  # no filter is the wipe's, refused (tested elsewhere)
    return chosen


def body(spec: Spec, target: str) -> dict[str, Any]:
    job: dict[str, Any] = {"prompt_type": spec.prompt_type, "labels": spec.labels}
    if spec.recurring:
        job["cron"] = f"{int(spec.due)} * * * *"
    else:
        job["exec_at"] = format_utc(first_runs_at(spec))
    if spec.prompt_type == "log.append":
        job["payload"] = {"message": "m"}
    else:
        job["payload"] = {"url": target}
        job["retry"] = {"max_attempts": 2, "initial_delay_seconds": 3600}
    return job


@contextmanager
def bounds(page_rows: int, call_rows: int) -> Iterator[None]:
    saved = removing.WIPE_PAGE_SIZE, removing.CANCEL_MAX_JOBS
    removing.WIPE_PAGE_SIZE, removing.CANCEL_MAX_JOBS = page_rows, call_rows
    try:
        yield
    finally:
        removing.WIPE_PAGE_SIZE, removing.CANCEL_MAX_JOBS = saved


async def created(scheduler: Scheduler, jobs: list[Spec]) -> list[str]:
    target = "http://127.0.0.1:9/hook"  # nothing listens: an attempt fails, retryable
    batch = [body(spec, target) for spec in jobs if not spec.single]
    made: Iterator[str] = iter([])
    if batch:
        outcome = (await scheduler.api.post("/api/schedule/batch", {"jobs": batch})).json()
        assert outcome["created"] == len(batch), outcome
        made = iter([result["job"]["transaction_id"] for result in outcome["results"]])
    ids = []
    for spec in jobs:
        if spec.single:
            reply = await scheduler.api.post("/api/schedule", body(spec, target))
            assert reply.status == 202, reply.body
            ids.append(reply.json()["transaction_id"])
        else:
            ids.append(next(made))
    return ids


async def listed(
    scheduler: Scheduler, query: list[tuple[str, str]], limit: int
) -> list[dict[str, Any]]:
    """Every job of the listing, page after page to the end."""
    jobs: list[dict[str, Any]] = []
    cursor: list[tuple[str, str]] = []
    for _ in range(200):
        params = urlencode([*query, ("limit", str(limit)), *cursor])
        reply = await scheduler.api.get(f"/api/schedule?{params}")
        assert reply.status == 200, reply.body
        page = reply.json()
        assert len(page["jobs"]) <= limit
        jobs += page["jobs"]
        if page["next_cursor"] is None:
            return jobs
        cursor = [("cursor", page["next_cursor"])]
    raise AssertionError("the listing never ended")


@dataclass
class Calls:
    cancelled: int = 0
    firing: list[str] = field(default_factory=list)
    unreadable: int = 0
    calls: int = 0


async def cancelled_until_complete(scheduler: Scheduler, query: list[tuple[str, str]]) -> Calls:
    seen = Calls()
    cursor: list[tuple[str, str]] = []
    for _ in range(200):
        reply = await scheduler.api.delete(f"/api/schedule?{urlencode([*query, *cursor])}")
        assert reply.status == 200, reply.body
        answer = reply.json()
        seen.calls += 1
        seen.cancelled += answer["cancelled"]
        seen.firing += answer["firing"]
        seen.unreadable += answer["unreadable"]
        if answer["complete"]:
            assert answer["next_cursor"] is None, answer
            return seen
        assert answer["next_cursor"], answer
        cursor = [("cursor", answer["next_cursor"])]
    raise AssertionError("the filtered delete never said complete")


@dataclass
class World:
    """The jobs as the test made them, once the clock is at RAN_BY."""

    specs: dict[str, Spec]  # by transaction id
    live: set[str]
    deleted: set[str]
    firing: dict[str, JobRecord]  # claimed by the test as an attempt would be: the record before
    paused: set[str]
    records: dict[str, JobRecord] = field(default_factory=dict)  # as the filter finds them

    def named_by(self, chosen: Filter) -> set[str]:
        """The oracle: the live jobs whose fields the filter names."""
        return {
            transaction_id
            for transaction_id in self.live
            if chosen.names(
                self.specs[transaction_id].labels,
                self.specs[transaction_id].prompt_type,
                exec_at_now(self.specs[transaction_id]),
            )
        }


async def arranged(scheduler: Scheduler, jobs: list[Spec]) -> World:
    """Create the jobs, run the clock to RAN_BY, then move, pause, delete or claim them."""
    ids = await created(scheduler, jobs)
    scheduler.host.run()
    scheduler.host.advance_to(RAN_BY)
    world = World(dict(zip(ids, jobs, strict=True)), set(), set(), {}, set())
    for transaction_id, spec in world.specs.items():
        stored = scheduler.job_store.get(transaction_id)
        assert stored is not None
        assert (stored.record.state == "succeeded") == ended_by_then(spec), stored.record
        if ended_by_then(spec):
            continue
        world.live.add(transaction_id)
        url = f"/api/schedule/{transaction_id}"
        if moves(spec):
            moved_to = {"exec_at": format_utc(exec_at_now(spec))}
            assert (await scheduler.api.request("PATCH", url, json_body=moved_to)).status == 200
        elif spec.fate == "paused" and spec.recurring:
            assert (await scheduler.api.post(f"{url}/pause")).status == 200
            world.paused.add(transaction_id)
        elif spec.fate == "deleted":
            assert (await scheduler.api.delete(url)).status == 200
            world.live.remove(transaction_id)
            world.deleted.add(transaction_id)
        elif spec.fate == "firing":
            # An attempt has claimed it (as the activity does): no delete may win.
            world.firing[transaction_id] = stored.record
            firing = stored.record.model_copy(update={"state": "firing"})
            scheduler.job_store.replace(stored, firing)
    for transaction_id, spec in world.specs.items():
        stored = scheduler.job_store.get(transaction_id)
        assert stored is not None
        # The world is what the test thinks it is before the app is asked anything.
        assert stored.record.exec_at == exec_at_now(spec), stored.record
        world.records[transaction_id] = stored.record
    return world


async def check_one_world(
    azurite: AzuriteService,
    jobs: list[Spec],
    chosen: Filter,
    list_limit: int,
    page_rows: int,
    call_rows: int,
) -> None:
    with running_scheduler(azurite) as scheduler, bounds(page_rows, call_rows):
        world = await arranged(scheduler, jobs)
        named = world.named_by(chosen)
        firing = named & set(world.firing)
        hypothesis.event(f"the filter names {min(len(named), 3)}{'+' if len(named) > 2 else ''}")
        edge = any(exec_at_now(world.specs[t]) in (chosen.due_from, chosen.due_to) for t in named)
        hypothesis.event(f"a bound at a named job's due time: {edge}")

        # The listing: exactly the oracle's jobs, each once, at the oracle's due times; and
        # without the labels (the due index rather than the label index) too.
        await check_listing(scheduler, world, chosen, list_limit)
        unlabelled = replace(chosen, label_pairs=[])
        await check_listing(scheduler, world, unlabelled, list_limit)

        # The filtered delete until complete: exactly the oracle's jobs, each counted once.
        first = await cancelled_until_complete(scheduler, chosen.query())
        assert first.cancelled == len(named - firing), (first, named, firing)
        assert sorted(first.firing) == sorted(firing)
        assert first.unreadable == 0
        hypothesis.event(f"the delete took {'one call' if first.calls == 1 else 'calls'}")
        # Each call but the last looks at CANCEL_MAX_JOBS index rows at least (a job has
        # one row in each index), so the cursor always gets further.
        assert first.calls <= len(jobs) // call_rows + 1, first
        for transaction_id, before in world.records.items():
            stored = scheduler.job_store.get(transaction_id)
            assert stored is not None
            if transaction_id in named - firing:
                assert stored.record.state == "cancelled", stored.record
                assert stored.record.cancelled_by == "filter"
            else:
                assert stored.record == before, transaction_id

        # A second pass finds nothing to cancel, and the firing jobs again; the listing
        # holds only those.
        second = await cancelled_until_complete(scheduler, chosen.query())
        assert (second.cancelled, sorted(second.firing)) == (0, sorted(firing))
        again = await listed(scheduler, chosen.query(), 5)
        assert {job["transaction_id"] for job in again} == firing

        await check_the_rest_still_runs(scheduler, world, named - firing)


async def check_listing(scheduler: Scheduler, world: World, chosen: Filter, limit: int) -> None:
    shown = await listed(scheduler, chosen.query(), limit)
    shown_ids = [job["transaction_id"] for job in shown]
    assert len(shown_ids) == len(set(shown_ids)), shown_ids
    assert set(shown_ids) == world.named_by(chosen), chosen
    for job in shown:
        spec = world.specs[job["transaction_id"]]
        assert job["exec_at"] == format_utc(exec_at_now(spec)), job
        assert job["labels"] == spec.labels


async def check_the_rest_still_runs(
    scheduler: Scheduler, world: World, cancelled: set[str]
) -> None:
    """Every job the filter did not cancel still runs (once its attempt is let go, or it is
    resumed); none it cancelled ever does."""
    for transaction_id, record in world.firing.items():
        stored = scheduler.job_store.get(transaction_id)
        assert stored is not None
        scheduler.job_store.replace(stored, record)
    for transaction_id in world.paused - cancelled:
        reply = await scheduler.api.post(f"/api/schedule/{transaction_id}/resume")
        assert reply.status == 200, reply.body
    scheduler.host.advance_to(START + timedelta(hours=4))
    for transaction_id, spec in world.specs.items():
        stored = scheduler.job_store.get(transaction_id)
        assert stored is not None
        record, before = stored.record, world.records[transaction_id]
        if transaction_id in cancelled | world.deleted:
            assert record.state == "cancelled"
            assert (record.attempts, record.runs) == (before.attempts, before.runs)
        elif spec.recurring:
            assert record.state == "pending", record
            assert record.runs > before.runs, record
        elif transaction_id in world.live:
            assert record.state in ("succeeded", "failed"), record
            assert record.attempts > before.attempts, record


@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    # The explain phase re-runs a failure hundreds of times to annotate it: minutes here.
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
)
@hypothesis.given(data=st.data())
async def test_filtered_listing_and_cancel_agree_with_the_oracle(
    azurite: AzuriteService, data: st.DataObject
) -> None:
    jobs = data.draw(st.lists(specs(), min_size=3, max_size=14), label="jobs")
    chosen = data.draw(filters(jobs), label="filter")
    await check_one_world(
        azurite,
        jobs,
        chosen,
        list_limit=data.draw(st.integers(1, 4), label="list limit"),
        page_rows=data.draw(st.integers(1, 4), label="rows per page"),
        call_rows=data.draw(st.integers(1, 4), label="rows per call"),
    )


def test_the_openapi_document_says_what_the_oracle_does() -> None:
    """The oracle reads `from` and `to` as inclusive, as docs/bulk.md and docs/api.md say
    and the app does; the OpenAPI document tells a client the same, for the listing and the
    delete alike."""
    operations = openapi_document()["paths"]["/api/schedule"]
    for method in ("get", "delete"):
        described = {p["name"]: p.get("description") for p in operations[method]["parameters"]}
        assert described["from"] == "only jobs due at or after this time", method
        assert described["to"] == "only jobs due at or before this time", method
