"""A job record as Table rows and back: its row, its index rows' keys, and what can still be
read of a row that is not a record (names of properties, never their values)."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import ValidationError

from scheduling.job_record import JobRecord, JobState
from scheduling.sealing import SealedPayload
from storage.table_storage import get_text, put_text

# Filled with the job's fields on the way in and out; a fixed-width UTC stamp sorts as text.
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
_PLAIN_FIELDS = (
    "transaction_id",
    "generation",
    "state",
    "prompt_type",
    "attempts",
    "runs",
    "skipped_runs",
)
# Small JSON values, each in one property ("" for none).
_JSON_FIELDS = ("retry", "recurrence", "last_run", "callbacks", "flow")
_TIME_FIELDS = (
    "exec_at",
    "accepted_at",
    "updated_at",
    "next_attempt_at",
    "fired_at",
    "failed_at",
    "replayed_at",
)


@dataclass(frozen=True)
class UnreadableRow:
    """A job's row that is not a readable JobRecord (a property corrupted, a long text cut
    short, a version that writes what this one cannot read), or whose payload cannot be
    opened: what could still be read of it (None where nothing could), and why, in one line.
    Its `etag` is the version read (empty when it came from a readable record)."""

    transaction_id: str
    why: str
    etag: str = ""
    state: str | None = None
    generation: str | None = None
    prompt_type: str | None = None
    exec_at: datetime | None = None
    failed_at: datetime | None = None

    @classmethod
    def of(cls, record: JobRecord, why: str) -> "UnreadableRow":
        """A readable record whose payload cannot be opened, shown as unreadable."""
        return cls(
            transaction_id=record.transaction_id,
            why=why,
            state=record.state,
            generation=record.generation,
            prompt_type=record.prompt_type,
            exec_at=record.exec_at,
            failed_at=record.failed_at,
        )


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _STAMP).replace(tzinfo=UTC)


def label_partition(key: str, value: str) -> str:
    """The label index's partition of one pair: `key=value` (a key holds no `=`)."""
    return f"{key}={value}"


def due_keys(exec_at: datetime, transaction_id: str) -> tuple[str, str]:
    """The index row's PartitionKey (the due minute) and RowKey (due time, then id)."""
    return exec_at.astimezone(UTC).strftime("%Y%m%d%H%M"), f"{stamp(exec_at)}|{transaction_id}"


def due_row(record: JobRecord) -> dict[str, Any]:
    partition, row = due_keys(record.exec_at, record.transaction_id)
    return {
        "PartitionKey": partition,
        "RowKey": row,
        "transaction_id": record.transaction_id,
        "generation": record.generation,
        "prompt_type": record.prompt_type,
        "exec_at": stamp(record.exec_at),
    }


def label_row(partition: str, record: JobRecord) -> dict[str, Any]:
    return {
        "PartitionKey": partition,
        "RowKey": record.transaction_id,
        "prompt_type": record.prompt_type,
    }


def record_row(record: JobRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    entity: dict[str, Any] = {
        "PartitionKey": record.transaction_id,
        "RowKey": record.transaction_id,
        **{name: data[name] for name in _PLAIN_FIELDS},
        **{
            name: "" if data[name] is None else json.dumps(data[name], separators=(",", ":"))
            for name in _JSON_FIELDS
        },
        "destination": record.destination or "",
        "request_fingerprint": record.request_fingerprint or "",
        "cancelled_by": record.cancelled_by or "",
        # In clear, like the other schedule fields: labels are not secret (scheduling/labels.py).
        "labels": json.dumps(record.labels, separators=(",", ":")) if record.labels else "",
    }
    for name in _TIME_FIELDS:
        moment = getattr(record, name)
        entity[name] = stamp(moment) if moment is not None else ""
    if record.last_outcome is not None:
        put_text(entity, "last_outcome", json.dumps(data["last_outcome"], separators=(",", ":")))
    if record.attempt_history:
        history = json.dumps(data["attempt_history"], separators=(",", ":"))
        put_text(entity, "attempt_history", history)
    put_text(entity, "sealed_payload", record.sealed_payload.model_dump_json())
    if record.sealed_callbacks is not None:
        put_text(entity, "sealed_callbacks", record.sealed_callbacks.model_dump_json())
    return entity


def record_from_row(entity: Mapping[str, Any]) -> JobRecord:
    outcome = get_text(entity, "last_outcome")
    history = get_text(entity, "attempt_history")
    sealed_callbacks = get_text(entity, "sealed_callbacks")
    return JobRecord.model_validate(
        {
            **{name: entity[name] for name in _PLAIN_FIELDS if name in entity},
            **{
                name: parse_stamp(entity[name]) if entity.get(name) else None
                for name in _TIME_FIELDS
            },
            **{
                name: json.loads(entity[name]) if entity.get(name) else None
                for name in _JSON_FIELDS
            },
            "destination": entity.get("destination") or None,
            "request_fingerprint": entity.get("request_fingerprint") or None,
            "cancelled_by": entity.get("cancelled_by") or None,
            "labels": json.loads(entity["labels"]) if entity.get("labels") else {},
            "last_outcome": json.loads(outcome) if outcome else None,
            "attempt_history": json.loads(history) if history else [],
            "sealed_payload": SealedPayload.model_validate_json(get_text(entity, "sealed_payload")),
            "sealed_callbacks": (
                SealedPayload.model_validate_json(sealed_callbacks) if sealed_callbacks else None
            ),
        }
    )


_STATES = frozenset(get_args(JobState))


def unreadable_row(entity: Mapping[str, Any], error: Exception) -> UnreadableRow:
    """What can still be read of a row `record_from_row` refused, and why in one line (names of
    properties, never their values: a row may hold a response a target sent)."""

    def text(name: str) -> str | None:
        value = entity.get(name)
        return value if isinstance(value, str) and value else None

    def moment(name: str) -> datetime | None:
        value = text(name)
        try:
            return parse_stamp(value) if value else None
        except ValueError:
            return None

    state = text("state")
    metadata = getattr(entity, "metadata", None) or {}
    return UnreadableRow(
        transaction_id=str(entity.get("PartitionKey") or entity.get("transaction_id") or ""),
        why=_why_unreadable(entity, error),
        etag=str(metadata.get("etag") or ""),
        state=state if state in _STATES else None,
        generation=text("generation"),
        prompt_type=text("prompt_type"),
        exec_at=moment("exec_at"),
        failed_at=moment("failed_at"),
    )


def _why_unreadable(entity: Mapping[str, Any], error: Exception) -> str:
    for name in _JSON_FIELDS:
        if entity.get(name) and not _is_json(entity[name]):
            return f"its {name} is not valid JSON (altered, or cut short)"
    if entity.get("labels") and not _is_json(entity["labels"]):
        return "its labels are not valid JSON (altered, or cut short)"
    for name in ("last_outcome", "attempt_history"):
        stored = get_text(entity, name)
        if stored and not _is_json(stored):
            return f"its {name} is not valid JSON (altered, or cut short)"
    for name in ("sealed_payload", "sealed_callbacks"):
        stored = get_text(entity, name)
        if (stored or name == "sealed_payload") and not _is_sealed(stored):
            return f"its {name} is not a sealed payload (altered, or cut short)"
    for name in _TIME_FIELDS:
        if entity.get(name) and not _is_stamp(entity[name]):
            return f"its {name} is not a time"
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return " ".join(f"its {where}: {first['msg']}".split())[:200]
    return f"it cannot be read ({type(error).__name__})"


def _is_json(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _is_sealed(text: str) -> bool:
    try:
        SealedPayload.model_validate_json(text)
    except ValueError:
        return False
    return True


def _is_stamp(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_stamp(value)
    except ValueError:
        return False
    return True
