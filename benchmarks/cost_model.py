"""What one job costs in storage transactions and scheduler actions, counted, on both backends.

`.venv/bin/python -m benchmarks.cost_model [--write-doc]`

Whole at ~520 lines: one model, the counted runs beside the table they write into
docs/cost.md, so a count and the line that prices it are read together.

Runs the app on the development host (virtual time) against Azurite, with every Table request
of the job store and job log going through the counting proxy (tests/support/table_requests.py),
and every orchestrator step's new history events noted as the host stores them. Five segments:

- `create`: POST /api/schedule of an http.call job, accepted;
- `fire`: that job's time comes, one attempt succeeds, the job ends;
- `recurring run`: one run of a recurring job, from the end of the run before to its own end;
- `retry`: the second attempt of a job whose first got a 503, from that failure to the success;
- `fire, flow-controlled`: as `fire`, for a job with `flow_control.max_parallel`.

From the counted history events it derives, with the rules below, the Azure Storage backend's
queue and table transactions and the Durable Task Scheduler's billed actions, and prints a
table and a monthly cost formula for 1 million jobs. With `--write-doc` it rewrites the marked
section of docs/cost.md; tests/test_cost_model.py recomputes the section and fails when the doc
says anything else, so the figures cannot drift from the code.

The rules that map history to the Azure Storage backend, read in DurableTask.AzureStorage
(Azure/durabletask, src/DurableTask.AzureStorage):

- a client start writes the Instances table (SetNewExecutionAsync) and adds the
  ExecutionStarted message to a control queue (AzureStorageOrchestrationService.cs);
- an orchestrator step gets its messages from the control queue (ControlQueue.GetMessagesAsync),
  reads the history (trackingStore.GetHistoryEventsAsync, when the session is not in memory:
  counted always, as after a timer of minutes the session has ended), writes the new events to
  the History table in batches of up to 99 plus the sentinel row (AzureTableTrackingStore
  UpdateStateAsync, `historyEventBatch.Count == 99`), merges the Instances row
  (UpdateInstanceTableAsync), adds each outbound message (CommitOutboundQueueMessages:
  activities to the work-item queue, timers and continue-as-new to the control queue) and deletes
  each message it consumed;
- an activity is got from the work-item queue, its result added to the control queue, and its
  message deleted (CompleteTaskActivityWorkItemAsync);
- every inbound event (ExecutionStarted, TaskCompleted, TaskFailed, TimerFired, EventRaised) is
  one message: added once by whoever sent it, deleted once by the step that consumed it;
- an entity operation is a message to the entity (added, got, deleted) and a step of the entity
  (history read, history batch, instance row): on Azure Storage entities are orchestrations;
- messages over 45 KB go to blobs; this app's inputs are ids and times, so none do.

Not per job, so not in the table: idle polling of the control and work-item queues (up to
maxQueuePollingInterval, 10 s here, per queue while an instance runs) and partition lease
renewals on blobs. docs/cost.md gives that term.

The Durable Task Scheduler bills actions (Microsoft's "Durable Task Scheduler billing" page): an
orchestration start, an activity start, an activity's result, a timer completing, an external
event, an entity operation. Here: ExecutionStarted + TaskScheduled + TaskCompleted + TaskFailed +
TimerFired + EventRaised events, plus entity operations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.durable_functions.models.utils import http_utils
from pytest_httpserver import HTTPServer
from werkzeug import Response

from local_durable_host.engine import DurableHost
from local_durable_host.history import EventType
from local_durable_host.work import InstanceRecord
from tests.support.local_servers import AzuriteService, running_azurite
from tests.support.loopback_guard import loopback_only
from tests.support.scheduler import Scheduler, running_scheduler
from tests.support.table_requests import TableRequestLog

DOC = Path(__file__).resolve().parents[1] / "docs" / "cost.md"
BEGIN = "<!-- cost_model: begin (written by `python -m benchmarks.cost_model --write-doc`) -->"
END = "<!-- cost_model: end -->"

# Table Storage writes at most 100 entities per batch; DurableTask.AzureStorage cuts history
# batches at 99 events and adds its sentinel row.
HISTORY_BATCH = 99
INBOUND = (
    EventType.EXECUTION_STARTED,
    EventType.TASK_COMPLETED,
    EventType.TASK_FAILED,
    EventType.TIMER_FIRED,
    EventType.EVENT_RAISED,
)

# List prices, per unit, in US dollars. NONE OF THESE COULD BE READ FROM A PRICE LIST HERE (no
# pricing page is reachable from these machines): the storage figures are as recalled from the
# Azure Storage pricing pages (Standard general-purpose v2, LRS, East US, 2025) and must be
# checked in the Azure pricing calculator before anyone quotes them; the Durable Task Scheduler
# publishes its prices only on its pricing page, so they are left open (None) and the formula
# keeps them as symbols.
PRICES: dict[str, tuple[float | None, str]] = {
    "table_transaction": (
        0.00036 / 10_000,
        "Table Storage, per transaction (recalled, unverified)",
    ),
    "queue_operation": (0.0004 / 10_000, "Queue Storage, per operation (recalled, unverified)"),
    "dts_action": (None, "Durable Task Scheduler Consumption, per action (not found here)"),
    "dts_capacity_unit_month": (None, "Durable Task Scheduler Dedicated, per CU-month (not found)"),
}
# From Microsoft's "Durable Task Scheduler billing" page: what one capacity unit dispatches, the
# Consumption SKU's ceiling, and the month it divides by.
DTS_ACTIONS_PER_SECOND_PER_CU = 2000
DTS_CONSUMPTION_MAX_ACTIONS_PER_SECOND = 500
SECONDS_PER_MONTH = 2_628_000
JOBS_PER_MONTH = 1_000_000
# DurableTask.AzureStorage's defaults (AzureStorageOrchestrationServiceSettings.cs): control
# queues (one per partition) and the lease renewal period of each partition's blob lease.
PARTITION_COUNT = 4
LEASE_RENEW_SECONDS = 10
HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"


def queue_polling_seconds() -> int:
    """maxQueuePollingInterval as the repository's host.json sets it (hh:mm:ss)."""
    host = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    text = host["extensions"]["durableTask"]["storageProvider"]["maxQueuePollingInterval"]
    hours, minutes, seconds = (int(part) for part in str(text).split(":"))
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class DurableWork:
    """What the durable side did in one segment, from the history events the host stored."""

    orchestrator_steps: int
    history_events: int
    history_batches: int
    inbound_messages: int
    client_starts: int
    activities: int
    timers: int
    continued_as_new: int
    entity_operations: int

    def storage_queue_operations(self) -> int:
        return (
            2 * self.inbound_messages  # each added once, deleted once
            + self.orchestrator_steps  # the control-queue get that brings a step its messages
            + 3 * self.activities  # the work item: added, got, deleted
            + 3 * self.entity_operations  # the operation's message: added, got, deleted
        )

    def storage_table_operations(self) -> int:
        return (
            self.client_starts  # the Instances row of a new instance
            + self.orchestrator_steps  # the history read
            + self.history_batches  # the history write
            + self.orchestrator_steps  # the Instances row merge
            + 3 * self.entity_operations  # the entity's step: history read, write, row
        )

    def scheduler_actions(self, events: Counter[int]) -> int:
        billed = (
            EventType.EXECUTION_STARTED,
            EventType.TASK_SCHEDULED,
            EventType.TASK_COMPLETED,
            EventType.TASK_FAILED,
            EventType.TIMER_FIRED,
            EventType.EVENT_RAISED,
        )
        return sum(events[kind] for kind in billed) + self.entity_operations


@dataclass(frozen=True)
class Segment:
    name: str
    what: str
    app_table_requests: list[str]
    events: dict[str, int]
    durable: DurableWork
    storage_queue: int
    storage_table: int
    scheduler_actions: int

    @property
    def app_table(self) -> int:
        return len(self.app_table_requests)


class StepRecorder:
    """Notes the history events each orchestrator step adds, as the host stores the instance.

    The development host keeps only the current execution's history (continue-as-new starts a
    new one), so the events are taken as they are stored: the host's `_put`, which every change
    of an instance goes through, is wrapped for the recorder's lifetime.
    """

    def __init__(self, host: DurableHost) -> None:
        self._host = host
        self._seen: dict[tuple[str, int], int] = {}
        self.steps: list[tuple[str, list[dict[str, Any]]]] = []
        self._entity_mark = 0

    @contextmanager
    def recording(self) -> Iterator[StepRecorder]:
        original: Callable[[InstanceRecord], None] = self._host._put

        def put(instance: InstanceRecord) -> None:
            key = (instance.instance_id, instance.episode_count)
            new = instance.history[self._seen.get(key, 0) :]
            self._seen[key] = len(instance.history)
            if new:
                self.steps.append((instance.instance_id, list(new)))
            original(instance)

        self._host._put = put  # type: ignore[method-assign]
        try:
            yield self
        finally:
            self._host._put = original  # type: ignore[method-assign,assignment]

    def clear(self) -> None:
        self.steps.clear()
        self._entity_mark = len(self._host.entity_operations)

    def work(self) -> tuple[Counter[int], DurableWork]:
        events: Counter[int] = Counter()
        steps = batches = 0
        for _, new in self.steps:
            kinds = [EventType(e["EventType"]) for e in new]
            events.update(kinds)
            if EventType.ORCHESTRATOR_STARTED in kinds:
                steps += 1
                batches += math.ceil(len(new) / HISTORY_BATCH)
        # A start by a client, not by the orchestration's own continue-as-new.
        client_starts = 0
        continued: set[str] = set()
        for instance_id, new in self.steps:
            for event in new:
                if event["EventType"] == EventType.CONTINUE_AS_NEW:
                    continued.add(instance_id)
                elif event["EventType"] == EventType.EXECUTION_STARTED:
                    if instance_id not in continued:
                        client_starts += 1
                    continued.discard(instance_id)
        entity_operations = len(self._host.entity_operations) - self._entity_mark
        return events, DurableWork(
            orchestrator_steps=steps,
            history_events=sum(events.values()),
            history_batches=batches,
            inbound_messages=sum(events[kind] for kind in INBOUND),
            client_starts=client_starts,
            activities=events[EventType.TASK_SCHEDULED],
            timers=events[EventType.TIMER_CREATED],
            continued_as_new=events[EventType.CONTINUE_AS_NEW],
            entity_operations=entity_operations,
        )


@dataclass
class Counting:
    """The app on a fresh development host, its Table requests through the counting proxy and
    its orchestrator steps recorded; `start()` begins a segment, `segment()` ends it."""

    scheduler: Scheduler
    wire: TableRequestLog
    recorder: StepRecorder

    def start(self) -> None:
        self.wire.clear()
        self.recorder.clear()

    def segment(self, name: str, what: str) -> Segment:
        events, durable = self.recorder.work()
        return Segment(
            name=name,
            what=what,
            app_table_requests=[r.describe() for r in self.wire.requests()],
            events={EventType(kind).name: count for kind, count in sorted(events.items())},
            durable=durable,
            storage_queue=durable.storage_queue_operations(),
            storage_table=durable.storage_table_operations(),
            scheduler_actions=durable.scheduler_actions(events),
        )

    async def http_call(self, url: str, **options: Any) -> datetime:
        """An accepted http.call job to `url`, due in five minutes; when it is due."""
        at = self.scheduler.now() + timedelta(minutes=5)
        await self.scheduler.accepted("http.call", {"url": url}, at=at, **options)
        return at


@contextmanager
def counting(azurite: AzuriteService) -> Iterator[Counting]:
    with TableRequestLog(azurite) as wire:
        through = AzuriteService(wire.table_endpoint, wire.connection_string)
        with running_scheduler(through) as scheduler:
            recorder = StepRecorder(scheduler.host)
            with recorder.recording():
                yield Counting(scheduler, wire, recorder)


async def one_shot(azurite: AzuriteService, target: HTTPServer) -> list[Segment]:
    target.expect_request("/ok").respond_with_data("ok")
    with counting(azurite) as count:
        host = count.scheduler.host
        # A first job makes the tables and fires: what every later job finds done.
        host.advance_to(await count.http_call(target.url_for("/ok")))
        count.start()
        at = await count.http_call(target.url_for("/ok"))
        host.advance(1)  # the orchestration starts and sets its timer
        created = count.segment("create", "POST /api/schedule, accepted; the orchestration starts")
        count.start()
        host.advance_to(at)
        fired = count.segment("fire", "the timer fires, one attempt succeeds")
    if len(target.log) != 2:
        raise RuntimeError(f"expected the two jobs' calls at the target, saw {len(target.log)}")
    return [created, fired]


async def flow_controlled(azurite: AzuriteService, target: HTTPServer) -> Segment:
    target.expect_request("/flow").respond_with_data("ok")
    with counting(azurite) as count:
        at = await count.http_call(target.url_for("/flow"), flow_control={"max_parallel": 1})
        count.scheduler.host.advance(1)  # started, waiting for its time
        count.start()
        count.scheduler.host.advance_to(at)
        return count.segment(
            "fire, flow-controlled",
            "as fire, with flow_control.max_parallel (a slot taken and given back)",
        )


async def retried(azurite: AzuriteService, target: HTTPServer) -> Segment:
    answers = iter([503, 200])
    target.expect_request("/flaky").respond_with_handler(
        lambda _request: Response("", status=next(answers))
    )
    with counting(azurite) as count:
        at = await count.http_call(
            target.url_for("/flaky"), retry={"max_attempts": 2, "initial_delay_seconds": 60}
        )
        count.scheduler.host.advance_to(at)  # the first attempt: 503, a retry is due
        count.start()
        count.scheduler.host.advance(3600)
        return count.segment("retry", "a 503, then the retry's attempt succeeds")


async def recurring_run(azurite: AzuriteService, target: HTTPServer) -> Segment:
    target.expect_request("/tick").respond_with_data("ok")
    with counting(azurite) as count:
        reply = await count.scheduler.api.post(
            "/api/schedule",
            {
                "cron": "0 * * * *",
                "timezone": "UTC",
                "prompt_type": "http.call",
                "payload": {"url": target.url_for("/tick")},
            },
        )
        if reply.status != 202:
            raise RuntimeError(f"the recurring job was refused: {reply.json()}")
        first = count.scheduler.now().replace(minute=0, second=0, microsecond=0)
        count.scheduler.host.advance_to(first + timedelta(hours=1, minutes=1))  # run 1 done
        count.start()
        count.scheduler.host.advance_to(first + timedelta(hours=2, minutes=1))  # run 2 done
        return count.segment(
            "recurring run", "one run of an hourly job, from the end of the run before"
        )


async def measure(azurite: AzuriteService) -> list[Segment]:
    try:
        with HTTPServer(host="127.0.0.1") as target:
            segments = await one_shot(azurite, target)
            segments.append(await recurring_run(azurite, target))
            segments.append(await retried(azurite, target))
            segments.append(await flow_controlled(azurite, target))
        return segments
    finally:
        await http_utils._close_session()


# -- the report -----------------------------------------------------------------------------


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def per_job(segments: Sequence[Segment]) -> dict[str, int]:
    """A one-shot job: its create and its fire."""
    by_name = {s.name: s for s in segments}
    create, fire = by_name["create"], by_name["fire"]
    return {
        "app_table": create.app_table + fire.app_table,
        "storage_queue": create.storage_queue + fire.storage_queue,
        "storage_table": create.storage_table + fire.storage_table,
        "scheduler_actions": create.scheduler_actions + fire.scheduler_actions,
    }


def render(segments: Sequence[Segment]) -> str:
    """The marked section of docs/cost.md: every figure in it comes from `segments`."""
    lines = [
        "| segment | what happens | job store + job log (Table) | orchestrator steps | "
        "history events | activities | timers | entity ops | Azure Storage backend: queue ops | "
        "Azure Storage backend: table ops | Durable Task Scheduler: actions |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in segments:
        d = s.durable
        lines.append(
            f"| {s.name} | {s.what} | {s.app_table} | {d.orchestrator_steps} | "
            f"{d.history_events} | {d.activities} | {d.timers} | {d.entity_operations} | "
            f"{s.storage_queue} | {s.storage_table} | {s.scheduler_actions} |"
        )
    job = per_job(segments)
    table_price = PRICES["table_transaction"][0]
    queue_price = PRICES["queue_operation"][0]
    storage_per_job = job["app_table"] + job["storage_table"], job["storage_queue"]
    storage_dollars = None
    if table_price is not None and queue_price is not None:
        storage_dollars = JOBS_PER_MONTH * (
            storage_per_job[0] * table_price + storage_per_job[1] * queue_price
        )
    dts_app_dollars = (
        None if table_price is None else JOBS_PER_MONTH * job["app_table"] * table_price
    )
    actions = JOBS_PER_MONTH * job["scheduler_actions"]
    rate = actions / SECONDS_PER_MONTH
    units = max(1, math.ceil(rate / DTS_ACTIONS_PER_SECOND_PER_CU))
    lines += [
        "",
        "Per one-shot job (create + fire): "
        f"{job['app_table']} Table transactions of the app, plus on the Azure Storage backend "
        f"{job['storage_table']} table and {job['storage_queue']} queue operations, or on the "
        f"Durable Task Scheduler {job['scheduler_actions']} actions.",
        "",
        f"Monthly, N one-shot jobs (N = {JOBS_PER_MONTH:,} in the example):",
        "",
        f"- Azure Storage backend: N * ({job['app_table']} + {job['storage_table']}) * P_table "
        f"+ N * {job['storage_queue']} * P_queue + idle polling = "
        f"{JOBS_PER_MONTH:,} * {storage_per_job[0]} * "
        f"{_price_text('table_transaction')} + {JOBS_PER_MONTH:,} * {storage_per_job[1]} * "
        f"{_price_text('queue_operation')} = **{_money(storage_dollars)}** + idle polling.",
        f"- Durable Task Scheduler, Consumption: N * {job['app_table']} * P_table + "
        f"N * {job['scheduler_actions']} * P_action = {_money(dts_app_dollars)} + "
        f"{actions:,} actions * P_action (P_action: {_price_text('dts_action')}).",
        f"- Durable Task Scheduler, Dedicated: N * {job['app_table']} * P_table + CUs * P_CU; "
        f"{actions:,} actions a month is {rate:.2f} actions/s on average, {units} CU at "
        f"{DTS_ACTIONS_PER_SECOND_PER_CU:,} actions/s each (size for the peak, not the average; "
        f"the Consumption SKU stops at {DTS_CONSUMPTION_MAX_ACTIONS_PER_SECOND} actions/s). "
        f"P_CU: {_price_text('dts_capacity_unit_month')}.",
        "",
        _idle_line(),
    ]
    return "\n".join(lines)


def _idle_line() -> str:
    poll = queue_polling_seconds()
    polls = (PARTITION_COUNT + 1) * 3600 // poll
    renewals = PARTITION_COUNT * 3600 // LEASE_RENEW_SECONDS
    queue_price = PRICES["queue_operation"][0]
    month = None if queue_price is None else polls * 730 * queue_price
    return (
        f"Idle polling (Azure Storage backend only), per hour that an instance of the app runs: "
        f"{PARTITION_COUNT} control queues and the work-item queue polled every {poll} s when "
        f"idle is {polls:,} queue operations (a month of hours: {_money(month)}), plus "
        f"{renewals:,} partition lease renewals (blob operations, not priced here). On Flex "
        "Consumption the app scales to zero when idle, so these hours are the hours with work."
    )


def _price_text(name: str) -> str:
    value, _ = PRICES[name]
    return "n/a" if value is None else f"${value:.3g}"


def write_doc(section: str, doc: Path = DOC) -> None:
    text = doc.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{doc} has no section between {BEGIN!r} and {END!r}")
    doc.write_text(pattern.sub(lambda _m: f"{BEGIN}\n{section}\n{END}", text), encoding="utf-8")


def documented_section(doc: Path = DOC) -> str:
    text = doc.read_text(encoding="utf-8")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--write-doc", action="store_true", help=f"rewrite the section in {DOC}")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON too")
    args = parser.parse_args(argv)
    with (
        loopback_only(),
        tempfile.TemporaryDirectory() as workdir,
        running_azurite(Path(workdir)) as (azurite, _server),
    ):
        segments = asyncio.run(measure(azurite))
    section = render(segments)
    print(section)
    if args.json:
        print(json.dumps([asdict(s) for s in segments], indent=2))
    for s in segments:
        print(f"\n{s.name}: " + "; ".join(s.app_table_requests), file=sys.stderr)
    if args.write_doc:
        write_doc(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
