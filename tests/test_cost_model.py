"""The cost model: docs/cost.md says what the benchmark counts, and the counts are right.

benchmarks/cost_model.py counts a job's Table requests at the wire and its orchestrator steps'
history events on the development host; the table in docs/cost.md must be exactly what it
computes now, so a change to the fire path that costs a request more shows up here (and in
the doc, once `--write-doc` is run) instead of leaving a stale figure.
"""

import re
from collections import Counter

from benchmarks.cost_model import (
    DurableWork,
    Segment,
    documented_section,
    measure,
    per_job,
    render,
)
from local_durable_host.history import EventType
from tests.support.local_servers import AzuriteService


def unnamed(requests: list[str]) -> list[str]:
    return [re.sub(r"jobs\d+", "jobs", request) for request in requests]


def by_name(segments: list[Segment]) -> dict[str, Segment]:
    return {segment.name: segment for segment in segments}


async def test_docs_cost_md_shows_what_the_benchmark_counts(azurite: AzuriteService) -> None:
    segments = await measure(azurite)

    assert documented_section() == render(segments), (
        "docs/cost.md is stale: run `.venv/bin/python -m benchmarks.cost_model --write-doc`"
    )


async def test_a_one_shot_job_is_seven_table_requests_three_steps_and_four_actions(
    azurite: AzuriteService,
) -> None:
    segments = by_name(await measure(azurite))
    create, fire = segments["create"], segments["fire"]

    # The record, its due-index row and the "accepted" log entry; then the claim (read, swap),
    # the outcome with its two log entries in one batch, and the due row's removal.
    assert create.app_table == 3
    assert fire.app_table == 4
    # The same three orchestrator calls and twelve history events as tests/test_fire_path_costs.
    assert create.durable.orchestrator_steps + fire.durable.orchestrator_steps == 3
    assert create.durable.history_events + fire.durable.history_events == 12
    assert per_job(list(segments.values())) == {
        "app_table": 7,
        "storage_queue": 12,
        "storage_table": 10,
        # start, timer fired, activity started, activity result
        "scheduler_actions": 4,
    }
    # A retry adds an attempt: the same requests as a fire (each scheduler has its own tables).
    assert unnamed(segments["retry"].app_table_requests) == unnamed(fire.app_table_requests)
    assert segments["fire, flow-controlled"].durable.entity_operations == 2
    assert segments["recurring run"].durable.continued_as_new == 1


def test_actions_follow_the_billing_pages_example() -> None:
    """Microsoft's "Durable Task Scheduler billing" page: an orchestration that calls three
    activities one after the other is 7 actions (its start, and two per activity)."""
    events: Counter[int] = Counter(
        {
            EventType.ORCHESTRATOR_STARTED: 4,
            EventType.EXECUTION_STARTED: 1,
            EventType.TASK_SCHEDULED: 3,
            EventType.TASK_COMPLETED: 3,
            EventType.ORCHESTRATOR_COMPLETED: 4,
            EventType.EXECUTION_COMPLETED: 1,
        }
    )
    work = DurableWork(
        orchestrator_steps=4,
        history_events=sum(events.values()),
        history_batches=4,
        inbound_messages=4,
        client_starts=1,
        activities=3,
        timers=0,
        continued_as_new=0,
        entity_operations=0,
    )
    assert work.scheduler_actions(events) == 7
    # And on Azure Storage: 4 messages in (each added and deleted), 4 gets, 3 work items;
    # the Instances row of the start, then per step a history read, write and row merge.
    assert work.storage_queue_operations() == 2 * 4 + 4 + 3 * 3
    assert work.storage_table_operations() == 1 + 3 * 4
