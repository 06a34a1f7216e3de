"""DurableHost's state in SQLite: what a change writes does not grow with what is stored,
finished instances leave memory and are purged after the retention, and everything an engine
holds comes back whole after a restart."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local_durable_host import engine as engine_module
from local_durable_host.engine import DurableHost
from local_durable_host.model import RuntimeStatus
from tests.support import toy_app
from tests.support.committed_state import committed_copy

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def alarm_input(label: str, sleep: float = 0) -> str:
    return json.dumps(json.dumps({"sleep": sleep, "label": label}))


def options(on_disk: bool, tmp_path: Path) -> dict[str, Any]:
    # On disk, activities on a worker thread, as the local host runs them.
    return {"activity_workers": 1, "state_path": tmp_path / "state"} if on_disk else {}


@pytest.fixture(params=[False, True], ids=["in-memory", "on-disk"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DurableHost]:
    with DurableHost(toy_app.app, START, **options(request.param, tmp_path)) as running:
        yield running


def cost(host: DurableHost, change: Callable[[], object]) -> tuple[int, int]:
    """(SQL statements, rows changed) of one change."""
    before = host.storage_counts()
    change()
    after = host.storage_counts()
    return after.statements - before.statements, after.rows_changed - before.rows_changed


def test_a_create_and_its_run_write_the_same_however_many_instances_finished(
    host: DurableHost,
) -> None:
    create = cost(host, lambda: host.start_instance("alarm", "probe-0", alarm_input("p")))
    to_the_end = cost(host, host.run)
    assert host.instance("probe-0").runtime_status is RuntimeStatus.COMPLETED

    for n in range(300):
        host.start_instance("alarm", f"done-{n}", alarm_input(f"d{n}"))
    host.run()

    # Finished instances are in the store only, and still answer.
    assert host.instances_in_memory() == 0
    assert host.instance("done-7").output == "D7"
    assert cost(host, lambda: host.start_instance("alarm", "probe-1", alarm_input("p"))) == create
    assert cost(host, host.run) == to_the_end
    assert host.instance("probe-1").output == "P"
    assert len(host.instance_ids()) == 302


def test_a_step_writes_what_it_adds_not_the_history_before_it() -> None:
    # Activities inline, so each step's writes are its own (on a pool they would land between
    # steps); the store, and what it writes, is the same with a file.
    host = DurableHost(toy_app.app, START)
    host.start_instance("chain", "long", json.dumps(json.dumps({"links": 40})))
    per_step = []
    while True:
        before = host.storage_counts()
        if not host.step():
            break
        after = host.storage_counts()
        per_step.append(
            (after.statements - before.statements, after.rows_changed - before.rows_changed)
        )
    assert host.instance("long").output == 40
    # The start, then the activity's step and the orchestrator's (its history one call longer
    # each time) forty times over: each writes the same however long the history is.
    assert len(per_step) == 81
    orchestrator_steps, activity_steps = per_step[2:-1:2], per_step[1::2]
    assert set(orchestrator_steps) == {orchestrator_steps[0]}
    assert set(activity_steps) == {activity_steps[0]}


def test_a_replaced_finished_instance_keeps_nothing_of_the_old_one(host: DurableHost) -> None:
    host.start_instance("chain", "again", json.dumps(json.dumps({"links": 3})))
    host.run()
    assert host.instances_in_memory() == 0

    host.start_instance("alarm", "again", alarm_input("new"))
    host.run()

    view = host.instance("again")
    assert (view.name, view.output, view.episode_count) == ("alarm", "NEW", 1)
    assert [e["Name"] for e in view.history if "Name" in e] == ["alarm", "shout"]
    assert host.instance_ids() == ["again"]


# -- retention ------------------------------------------------------------------------------


def test_finished_instances_are_purged_after_the_retention_running_ones_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "PURGE_BATCH", 2)  # several transactions
    with DurableHost(toy_app.app, START, retention=timedelta(hours=1)) as host:
        for n in range(5):
            host.start_instance("alarm", f"old-{n}", alarm_input("x"))
        host.start_instance("race", "running", None)
        host.run()
        host.advance(30 * 60)
        host.start_instance("alarm", "young", alarm_input("y"))
        host.run()

        host.advance(30 * 60)  # old-* finished exactly an hour ago: kept
        assert host.purge_expired() == 0
        host.advance(1)
        assert host.purge_expired() == 5
        assert host.instance_ids() == ["running", "young"]
        assert host.find_instance("old-0") is None

        host.advance(10 * 3600)
        assert host.purge_expired() == 1
        assert host.instance("running").runtime_status is RuntimeStatus.RUNNING

        host.request_termination("running", "enough")
        host.run()
        host.advance(3600)
        assert host.purge_expired() == 0
        host.advance(1)
        assert host.purge_expired() == 1
        assert host.instance_ids() == []


def test_a_host_purges_what_expired_while_it_was_stopped_when_it_starts(tmp_path: Path) -> None:
    on_disk = options(True, tmp_path)
    with DurableHost(toy_app.app, START, retention=timedelta(hours=1), **on_disk) as first:
        first.start_instance("alarm", "done", alarm_input("x"))
        first.start_instance("race", "running", None)
        first.run()

    later = START + timedelta(hours=2)
    with DurableHost(toy_app.app, later, retention=timedelta(hours=1), **on_disk) as second:
        assert second.instance_ids() == ["running"]


def test_the_wall_clock_host_purges_now_and_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "RETENTION_SWEEP_SECONDS", 0.1)
    host = DurableHost(
        toy_app.app,
        None,
        activity_workers=1,
        state_path=tmp_path / "state",
        retention=timedelta(seconds=0.3),
    )
    stop = threading.Event()
    serving = threading.Thread(target=host.serve, args=(stop,))
    serving.start()
    try:
        host.start_instance("alarm", "brief", alarm_input("x"))
        deadline = time.monotonic() + 20
        while host.find_instance("brief") is not None:
            assert time.monotonic() < deadline, "the finished instance was never purged"
            time.sleep(0.05)
    finally:
        stop.set()
        serving.join(10)
        host.close()


# -- restarts: an oracle that never restarts ------------------------------------------------


class Restarting:
    """An engine on a state file, stopped after every step (`between` steps: closed, so its
    last step is saved whole) or killed `inside` one: while the step's app code runs, a
    client's request commits, and the engine is abandoned and started again from that commit
    (activities inline, so theirs are steps too)."""

    def __init__(self, path: Path, where: str, **settings: Any) -> None:
        self._path, self._where, self._settings = path, where, settings
        self.failing = True
        self.kills = 0
        self.host = self._open(START)

    def _open(self, now: datetime) -> DurableHost:
        host = DurableHost(
            toy_app.app,
            now,
            activity_workers=1 if self._where == "between" else 0,
            state_path=self._path,
            **self._settings,
        )
        # A fault switch is the test's, not the state's: set again after each start.
        if self.failing:
            host.fail_entity_invocations("journal", "stuck")
        return host

    def step(self) -> bool:
        now = self.host.now()
        if self._where == "between":
            progressed = self.host.step()
            self.host.close()  # waits for the running activity, saves
            self.host = self._open(now)
            return progressed
        killed: list[Path] = []
        with _inside_app_code(lambda: killed.append(self._commit_and_copy())):
            progressed = self.host.step()
        if killed:
            self.kills += 1
            self.host.close()  # the state file the kill left is the copy, not this one
            self._path = killed[0]
            self.host = self._open(now)
            assert self.host.step(), "the killed step's work was not there to do again"
        return progressed

    def _commit_and_copy(self) -> Path:
        self.host.purge_instance("no such instance")  # a client's request: it commits
        return committed_copy(self._path, self._path.parent / f"killed-{self.kills}")


@contextmanager
def _inside_app_code(kill: Callable[[], object]) -> Iterator[None]:
    """Calls `kill` once, as the first app call of the step begins."""
    armed = [True]
    originals = {
        name: getattr(engine_module, name) for name in ("call_orchestrator", "call_entity")
    }
    original_activity = engine_module.DurableHost._call_activity

    def first(call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*arguments: Any) -> Any:
            if armed and armed.pop():
                kill()
            return call(*arguments)

        return wrapped

    try:
        for name, call in originals.items():
            setattr(engine_module, name, first(call))
        engine_module.DurableHost._call_activity = first(original_activity)  # type: ignore[method-assign]
        yield
    finally:
        for name, call in originals.items():
            setattr(engine_module, name, call)
        engine_module.DurableHost._call_activity = original_activity  # type: ignore[method-assign]


def observed(host: DurableHost) -> dict[str, Any]:
    return {
        "instances": {i: host.instance(i) for i in host.instance_ids()},
        "timers": host.pending_timers(),
        "queued": host.queued_message_count(),
        "delayed": host.delayed_messages(),
        "entities": {key: host.entity("journal", key).state_json for key in ("ada", "w", "stuck")},
    }


@pytest.mark.parametrize("where", ["between", "inside"])
def test_every_step_survives_a_restart_whole(tmp_path: Path, where: str) -> None:
    """The same work on a host that never stops and on one stopped after each step, or killed
    inside each: both see the same instances (histories, statuses, outputs), timers,
    messages and entities."""
    settings: dict[str, Any] = {"activity_start_delay": timedelta(seconds=3)}
    oracle = DurableHost(toy_app.app, START, **settings)
    oracle.fail_entity_invocations("journal", "stuck")
    restarting = Restarting(tmp_path / "state", where, **settings)

    def on_both(method: str, *arguments: Any) -> None:
        for host in (oracle, restarting.host):
            getattr(host, method)(*arguments)

    try:
        round_trip = json.dumps(json.dumps({"who": "ada", "sleep": 30, "round": 0, "rounds": 2}))
        on_both("start_instance", "round_trip", "rt", round_trip)
        on_both("start_instance", "alarm", "al", alarm_input("x", sleep=10))
        on_both("start_instance", "race", "ra", None)
        on_both("start_instance", "journal_writer", "jw", json.dumps('{"key": "w"}'))
        on_both("start_instance", "impatient", "im", json.dumps('{"key": "stuck", "wait": 5}'))
        retried = json.dumps(
            json.dumps({"retries": 3, "retry_ms": 4000, "always": True, "message": "no"})
        )
        on_both("start_instance", "careful", "ca", retried)
        sent: set[str] = set()
        for _ in range(400):
            progressed = oracle.step()
            assert restarting.step() == progressed
            assert observed(restarting.host) == observed(oracle)
            if progressed:
                continue
            stage = oracle.instance("rt").custom_status
            if stage and stage["stage"] == "waiting" and f"go-{stage['round']}" not in sent:
                name = f"go-{stage['round']}"
                sent.add(name)
                on_both("raise_event", "rt", "go", json.dumps(json.dumps(name)))
                continue
            if "cancel" not in sent and oracle.now() >= START + timedelta(seconds=20):
                sent.add("cancel")
                on_both("raise_event", "ra", "cancel", None)
                on_both("raise_event", "ra", "finish", None)
                continue
            if "heal" not in sent and oracle.now() >= START + timedelta(seconds=60):
                sent.add("heal")
                restarting.failing = False
                on_both("heal_entity_invocations", "journal")
                continue
            moments = [at for _, at in oracle.pending_timers()]
            moments += [at for at, _ in oracle.delayed_messages()]
            if not moments:
                break
            due = max(min(moments), oracle.now())
            on_both("set_clock", due)
        else:
            pytest.fail("the work did not finish")

        outputs = {i: oracle.instance(i).output for i in oracle.instance_ids()}
        assert outputs == {
            "rt": {"greeting": "hello ada", "answer": "go-1", "journal_size": 4},
            "al": "X",
            "ra": "cancelled",
            "jw": {
                "entries": ["signalled by orchestration", "called by orchestration"],
                "failure": "journal refused",
            },
            "im": "gave up",
            "ca": {"caught": outputs["ca"]["caught"]},
        }
        assert "ValueError: no" in outputs["ca"]["caught"]
        assert oracle.entity_state("journal", "stuck") == ["acquire", "gave up"]
        assert [call.name for call in oracle.activity_calls].count("explode") == 3
        if where == "inside":
            # Killed inside each of the 39 steps that ran app code (episodes, entity
            # batches, activities).
            assert restarting.kills == 39
    finally:
        oracle.close()
        restarting.host.close()
