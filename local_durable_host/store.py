"""The engine's durable state in SQLite: a row per instance, history event, queued message,
timer, entity and running activity, each change written as it is made.

The engine writes into one open transaction and commits it whole (`commit`): before a
client request is answered, and at most 0.2 s after its own steps (engine.py). A kill
(kill -9) loses only what was not committed, and what was not committed is never half a
step. WAL with synchronous=NORMAL: a commit survives a killed process at once; a power cut
may lose the last commits, never the file (a development tool's trade for speed).

Finished instances stay here only: the engine keeps the live ones in memory and reads a
finished one when asked for it (a status query, a create that replaces it), so a thousand
finished jobs cost a create nothing but a B-tree probe. `finished_before` finds what
retention purges.

Whole at ~560 lines: the schema and every statement that reads or writes it, so each table's
writers are read in one place.
"""

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from local_durable_host.history import format_timestamp, parse_timestamp
from local_durable_host.model import TERMINAL_STATUSES, EntityView, RuntimeStatus
from local_durable_host.work import (
    ActivityWork,
    DeliverEvent,
    EntityWork,
    InstanceRecord,
    RetryState,
    StartExecution,
    Terminate,
    Timer,
    Work,
)

# Raised when what is stored changes shape: another version's file is refused, not half-read.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    input_json TEXT,
    created_time TEXT NOT NULL,
    status TEXT NOT NULL,
    output_json TEXT,
    custom_status_json TEXT,
    last_updated_time TEXT NOT NULL,
    episode_count INTEGER NOT NULL,
    next_event_id INTEGER NOT NULL,
    retries TEXT NOT NULL,
    -- When it became Completed, Failed or Terminated; NULL while it runs.
    finished_at TEXT
);
CREATE INDEX instances_by_finish ON instances (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE history (
    instance_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, position)
) WITHOUT ROWID;
CREATE TABLE actions (
    instance_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (instance_id, position)
) WITHOUT ROWID;
CREATE TABLE episodes (
    instance_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    max_history_length INTEGER NOT NULL,
    PRIMARY KEY (instance_id, episode)
) WITHOUT ROWID;
CREATE TABLE messages (seq INTEGER PRIMARY KEY, visible_at TEXT, body TEXT NOT NULL);
CREATE TABLE timers (
    seq INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    timer_id INTEGER NOT NULL,
    fire_at TEXT NOT NULL
);
CREATE INDEX timers_by_execution ON timers (execution_id);
CREATE TABLE entities (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    state_json TEXT,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
CREATE TABLE activities (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""
# The SQL is written out whole (never formatted from names), so no value can become SQL.
_INSERT_INSTANCE = """INSERT OR REPLACE INTO instances (instance_id, name, version, execution_id,
    input_json, created_time, status, output_json, custom_status_json, last_updated_time,
    episode_count, next_event_id, retries, finished_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_UPDATE_INSTANCE = """UPDATE instances SET name = ?, version = ?, execution_id = ?,
    input_json = ?, created_time = ?, status = ?, output_json = ?, custom_status_json = ?,
    last_updated_time = ?, episode_count = ?, next_event_id = ?, retries = ?, finished_at = ?
    WHERE instance_id = ?"""
_SELECT_INSTANCE = """SELECT instance_id, name, version, execution_id, input_json,
    created_time, status, output_json, custom_status_json, last_updated_time, episode_count,
    next_event_id, retries FROM instances"""
_DELETE_OF_INSTANCE = {
    "instances": "DELETE FROM instances WHERE instance_id = ?",
    "history": "DELETE FROM history WHERE instance_id = ?",
    "actions": "DELETE FROM actions WHERE instance_id = ?",
    "episodes": "DELETE FROM episodes WHERE instance_id = ?",
}
_WORK_KINDS: dict[str, type[Any]] = {
    "start": StartExecution,
    "event": DeliverEvent,
    "terminate": Terminate,
    "activity": ActivityWork,
    "entity": EntityWork,
}
_KIND_OF = {kind: name for name, kind in _WORK_KINDS.items()}


class StateRefused(ValueError):
    """The state file was written by another version of the host, or is not one at all."""


class StoreCounts(NamedTuple):
    """SQL statements executed and rows changed since the store was opened."""

    statements: int
    rows_changed: int


@dataclass
class StoredState:
    """What a starting engine takes back: live instances and everything queued."""

    instances: list[InstanceRecord]
    messages: list[tuple[int, Work, datetime | None]]
    timers: list[Timer]
    entities: list[EntityView]
    # Activities that were running: they never reported, so they run again.
    in_flight: list[tuple[int, ActivityWork]]
    counter: int


@dataclass
class _Written:
    """How much of an instance in memory is in the store, so a step writes only the rest."""

    record: InstanceRecord
    episode: int
    history: int
    actions: int
    episodes: int


class DurableStore:
    """One SQLite database (a file, or in memory when `path` is None), used from any thread."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._in_transaction = False
        self._statements = 0
        self._writes = 0
        self._written: dict[str, _Written] = {}
        self._db = self._open(path)

    def _open(self, path: Path | None) -> sqlite3.Connection:
        if path is None:
            db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            db.executescript(_SCHEMA)
            return db
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as error:
            db.close()
            raise _refusal(path, "not a state database") from error
        if version != SCHEMA_VERSION and (version or tables):
            db.close()
            raise _refusal(path, f"schema {version}, this host reads {SCHEMA_VERSION}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if not version:
            db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        return db

    def close(self) -> None:
        with self._lock:
            if self._in_transaction:
                self._db.execute("ROLLBACK")
                self._in_transaction = False
            self._db.close()

    def commit(self) -> None:
        """Make everything written so far durable, at once."""
        with self._lock:
            if self._in_transaction:
                self._db.execute("COMMIT")
                self._in_transaction = False

    @property
    def writes(self) -> int:
        """Statements that changed something, so far: whether a change has begun writing."""
        with self._lock:
            return self._writes

    def counts(self) -> StoreCounts:
        with self._lock:
            return StoreCounts(self._statements, self._db.total_changes)

    # -- instances -------------------------------------------------------------------------

    def put_instance(self, record: InstanceRecord) -> None:
        """Write what changed in `record` since it was last written: its row, and only the
        history events, actions and episode lengths it gained."""
        with self._lock:
            written = self._written.get(record.instance_id)
            row = _instance_row(record)
            if written is None or written.record is not record:
                # New, or a new instance under a finished one's id: nothing of the old stays.
                self._delete_rows(record.instance_id, ("history", "actions", "episodes"))
                self._write(_INSERT_INSTANCE, row)
                written = _Written(record, record.episode_count, 0, 0, 0)
            else:
                self._write(_UPDATE_INSTANCE, (*row[1:], row[0]))
                if written.episode != record.episode_count:
                    # A new execution: its history starts empty.
                    self._delete_rows(record.instance_id, ("history", "actions"))
                    written.episode, written.history, written.actions = record.episode_count, 0, 0
            instance_id = record.instance_id
            self._write_many(
                "INSERT INTO history (instance_id, position, event) VALUES (?, ?, ?)",
                (
                    (instance_id, position, json.dumps(event))
                    for position, event in enumerate(record.history)
                    if position >= written.history
                ),
            )
            self._write_many(
                "INSERT INTO actions (instance_id, position, signature) VALUES (?, ?, ?)",
                (
                    (instance_id, position, signature)
                    for position, signature in enumerate(record.action_signatures)
                    if position >= written.actions
                ),
            )
            # The last episode's length may have grown since it was written.
            self._write_many(
                "INSERT OR REPLACE INTO episodes (instance_id, episode, max_history_length) "
                "VALUES (?, ?, ?)",
                (
                    (instance_id, episode, length)
                    for episode, length in enumerate(record.max_history_lengths)
                    if episode >= written.episodes - 1
                ),
            )
            written.history = len(record.history)
            written.actions = len(record.action_signatures)
            written.episodes = len(record.max_history_lengths)
            self._written[instance_id] = written

    def forget(self, instance_id: str) -> None:
        """The engine no longer holds the instance in memory (it finished): it stays here."""
        with self._lock:
            self._written.pop(instance_id, None)

    def delete_instance(self, instance_id: str) -> None:
        with self._lock:
            self._written.pop(instance_id, None)
            self._delete_rows(instance_id, ("instances", "history", "actions", "episodes"))

    def instance_status(self, instance_id: str) -> tuple[RuntimeStatus, str] | None:
        """(status, execution id) of a stored instance, without reading its history."""
        with self._lock:
            found = self._read(
                "SELECT status, execution_id FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
        return None if found is None else (RuntimeStatus(found[0]), found[1])

    def read_instance(self, instance_id: str) -> InstanceRecord | None:
        with self._lock:
            row = self._read(f"{_SELECT_INSTANCE} WHERE instance_id = ?", (instance_id,))
            found = row.fetchone()
            if found is None:
                return None
            record = _instance_from_row(found)
            record.history = [
                json.loads(r[0])
                for r in self._read(
                    "SELECT event FROM history WHERE instance_id = ? ORDER BY position",
                    (instance_id,),
                )
            ]
            record.action_signatures = [
                r[0]
                for r in self._read(
                    "SELECT signature FROM actions WHERE instance_id = ? ORDER BY position",
                    (instance_id,),
                )
            ]
            record.max_history_lengths = [
                r[0]
                for r in self._read(
                    "SELECT max_history_length FROM episodes WHERE instance_id = ? "
                    "ORDER BY episode",
                    (instance_id,),
                )
            ]
        return record

    def instance_ids(self) -> list[str]:
        """Every stored instance, in creation order (a replaced one counts as created anew)."""
        with self._lock:
            return [r[0] for r in self._read("SELECT instance_id FROM instances ORDER BY rowid")]

    def finished_before(self, moment: datetime, limit: int) -> list[str]:
        """Up to `limit` instances that finished before `moment`, oldest first."""
        with self._lock:
            rows = self._read(
                "SELECT instance_id FROM instances WHERE finished_at < ? "
                "ORDER BY finished_at LIMIT ?",
                (format_timestamp(moment), limit),
            )
            return [r[0] for r in rows]

    # -- messages and timers (the mailbox's log) -------------------------------------------

    def message_queued(self, seq: int, work: Work, visible_at: datetime | None) -> None:
        with self._lock:
            self._write(
                "INSERT INTO messages (seq, visible_at, body) VALUES (?, ?, ?)",
                (seq, None if visible_at is None else format_timestamp(visible_at), _encode(work)),
            )

    def messages_taken(self, seqs: list[int]) -> None:
        with self._lock:
            self._write_many("DELETE FROM messages WHERE seq = ?", ((s,) for s in seqs))

    def message_moved(self, seq: int, new_seq: int) -> None:
        """A delayed message became visible: it joins the queue's back."""
        with self._lock:
            self._write(
                "UPDATE messages SET seq = ?, visible_at = NULL WHERE seq = ?", (new_seq, seq)
            )

    def timer_started(self, timer: Timer) -> None:
        with self._lock:
            self._write(
                "INSERT INTO timers (seq, instance_id, execution_id, timer_id, fire_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    timer.sequence,
                    timer.instance_id,
                    timer.execution_id,
                    timer.timer_id,
                    format_timestamp(timer.fire_at),
                ),
            )

    def timer_taken(self, sequence: int) -> None:
        with self._lock:
            self._write("DELETE FROM timers WHERE seq = ?", (sequence,))

    def timers_dropped(self, execution_id: str) -> None:
        with self._lock:
            self._write("DELETE FROM timers WHERE execution_id = ?", (execution_id,))

    def counter_moved(self, value: int) -> None:
        with self._lock:
            self._write("INSERT OR REPLACE INTO meta (name, value) VALUES ('counter', ?)", (value,))

    # -- running activities and entities ---------------------------------------------------

    def activity_started(self, seq: int, work: ActivityWork) -> None:
        with self._lock:
            self._write("INSERT INTO activities (seq, body) VALUES (?, ?)", (seq, _encode(work)))

    def activity_ended(self, seq: int) -> None:
        with self._lock:
            self._write("DELETE FROM activities WHERE seq = ?", (seq,))

    def put_entity(self, entity: EntityView) -> None:
        with self._lock:
            if entity.exists:
                self._write(
                    "INSERT OR REPLACE INTO entities (name, key, state_json) VALUES (?, ?, ?)",
                    (entity.name, entity.key, entity.state_json),
                )
            else:
                self._write(
                    "DELETE FROM entities WHERE name = ? AND key = ?", (entity.name, entity.key)
                )

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> StoredState:
        """Everything a starting engine holds in memory: all but the finished instances."""
        with self._lock:
            instances = {
                row[0]: _instance_from_row(row)
                for row in self._read(
                    f"{_SELECT_INSTANCE} WHERE finished_at IS NULL ORDER BY rowid"
                )
            }
            for instance_id, event in self._read(
                "SELECT h.instance_id, h.event FROM history h JOIN instances i "
                "USING (instance_id) WHERE i.finished_at IS NULL ORDER BY h.instance_id, h.position"
            ):
                instances[instance_id].history.append(json.loads(event))
            for instance_id, signature in self._read(
                "SELECT a.instance_id, a.signature FROM actions a JOIN instances i "
                "USING (instance_id) WHERE i.finished_at IS NULL ORDER BY a.instance_id, a.position"
            ):
                instances[instance_id].action_signatures.append(signature)
            for instance_id, length in self._read(
                "SELECT e.instance_id, e.max_history_length FROM episodes e JOIN instances i "
                "USING (instance_id) WHERE i.finished_at IS NULL ORDER BY e.instance_id, e.episode"
            ):
                instances[instance_id].max_history_lengths.append(length)
            for record in instances.values():
                self._written[record.instance_id] = _Written(
                    record,
                    record.episode_count,
                    len(record.history),
                    len(record.action_signatures),
                    len(record.max_history_lengths),
                )
            messages = [
                (seq, _decode(body), None if visible is None else parse_timestamp(visible))
                for seq, visible, body in self._read(
                    "SELECT seq, visible_at, body FROM messages ORDER BY seq"
                )
            ]
            timers = [
                Timer(parse_timestamp(fire_at), seq, instance_id, execution_id, timer_id)
                for seq, instance_id, execution_id, timer_id, fire_at in self._read(
                    "SELECT seq, instance_id, execution_id, timer_id, fire_at FROM timers"
                )
            ]
            entities = [
                EntityView(name, key, True, state)
                for name, key, state in self._read("SELECT name, key, state_json FROM entities")
            ]
            in_flight = [
                (seq, _decode(body))
                for seq, body in self._read("SELECT seq, body FROM activities ORDER BY seq")
            ]
            counter = self._read("SELECT value FROM meta WHERE name = 'counter'").fetchone()
        return StoredState(
            instances=list(instances.values()),
            messages=messages,
            timers=timers,
            entities=entities,
            in_flight=in_flight,
            counter=counter[0] if counter else 0,
        )

    # -- SQL -------------------------------------------------------------------------------

    def _write(self, sql: str, parameters: Iterable[Any] = ()) -> None:
        if not self._in_transaction:
            self._db.execute("BEGIN")
            self._in_transaction = True
            self._statements += 1
        self._db.execute(sql, tuple(parameters))
        self._statements += 1
        self._writes += 1

    def _write_many(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        for row in rows:
            self._write(sql, row)

    def _read(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        self._statements += 1
        return self._db.execute(sql, parameters)

    def _delete_rows(self, instance_id: str, tables: tuple[str, ...]) -> None:
        for table in tables:
            self._write(_DELETE_OF_INSTANCE[table], (instance_id,))


def _refusal(path: Path, why: str) -> StateRefused:
    return StateRefused(
        f"{path} was saved by another version of the local durable host ({why}): delete "
        f"{path.parent}/ to start empty (the job store keeps the jobs: the stalled-job repair "
        "starts each again once it is 10 minutes overdue)"
    )


def _encode(work: Work) -> str:
    # The messages are flat dataclasses of JSON values (an event is a dict): no deep copy.
    return json.dumps({"kind": _KIND_OF[type(work)], **vars(work)})


def _decode(body: str) -> Any:
    fields = json.loads(body)
    return _WORK_KINDS[fields.pop("kind")](**fields)


def _instance_row(record: InstanceRecord) -> tuple[Any, ...]:
    finished = record.status in TERMINAL_STATUSES
    return (
        record.instance_id,
        record.name,
        record.version,
        record.execution_id,
        record.input_json,
        format_timestamp(record.created_time),
        str(record.status),
        record.output_json,
        record.custom_status_json,
        format_timestamp(record.last_updated_time),
        record.episode_count,
        record.next_event_id,
        json.dumps(
            {
                str(event_id): {
                    "function_name": retry.function_name,
                    "input_json": retry.input_json,
                    "max_attempts": retry.max_attempts,
                    "interval_us": retry.interval // timedelta(microseconds=1),
                    "attempts": retry.attempts,
                }
                for event_id, retry in record.retries.items()
            }
        ),
        format_timestamp(record.last_updated_time) if finished else None,
    )


def _instance_from_row(row: tuple[Any, ...]) -> InstanceRecord:
    (instance_id, name, version, execution_id, input_json, created, status, output_json,
     custom_status_json, last_updated, episode_count, next_event_id, retries) = row  # fmt: skip
    return InstanceRecord(
        instance_id=instance_id,
        name=name,
        version=version,
        execution_id=execution_id,
        input_json=input_json,
        created_time=parse_timestamp(created),
        status=RuntimeStatus(status),
        output_json=output_json,
        custom_status_json=custom_status_json,
        last_updated_time=parse_timestamp(last_updated),
        episode_count=episode_count,
        next_event_id=next_event_id,
        retries={
            int(event_id): RetryState(
                function_name=retry["function_name"],
                input_json=retry["input_json"],
                max_attempts=retry["max_attempts"],
                interval=timedelta(microseconds=retry["interval_us"]),
                attempts=retry["attempts"],
            )
            for event_id, retry in json.loads(retries).items()
        },
    )
