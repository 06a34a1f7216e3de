"""Reading jobs for both route tables: the live-job listing and one job's status."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlsplit

import azure.durable_functions as df
import azure.functions as func
from pydantic import ValidationError

from api.job_views import (
    listed_view,
    may_wait_for_a_slot,
    slot_wait_view,
    status_view,
    unreadable_view,
)
from api.problems import FieldError, field_errors, not_found, problem, validation_problem
from api.queries import DEFAULT_PREVIEW, MAX_PREVIEW
from api.responses import FireTimes
from blueprints import dependencies
from blueprints.durable_json import decode_durable_json
from blueprints.http_io import json_response, query_flag, query_int
from blueprints.instances import backend_unavailable, bounded, checked_id, status_of
from blueprints.unreadable import key_check, read_job, shown
from scheduling.job_record import LIVE_STATES, JobRecord
from scheduling.labels import MAX_LABELS, InvalidLabelFilter, parse_label_filter
from scheduling.recurrence import Recurrence, RecurrenceError
from scheduling.timing import ExecAtError, format_utc, parse_exec_at
from scheduling.when import first_runs
from storage.index_upkeep import label_row_verdict, row_verdict
from storage.job_rows import UnreadableRow
from storage.job_store import (
    ContinuationToken,
    DueEntry,
    DueRange,
    LabelEntry,
    StoredJob,
    TableJobStore,
)
from storage.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
)

log = logging.getLogger(__name__)


async def list_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Live jobs (pending, firing, retrying) in exec_at order; a page may come back short."""
    page = await live_page(request)
    jobs = [
        listed_view(record) if isinstance(record, JobRecord) else unreadable_view(record)
        for record in page.records
    ]
    # A JobPage (api/responses.py), its views not validated again on every request: a
    # view that drifts from its model fails the contract test, not a caller's listing.
    return json_response({"jobs": jobs, "next_cursor": page.next_cursor})


@dataclass(frozen=True)
class LivePage:
    # A job that cannot be read is in its place, as what could be read of it.
    records: list[JobRecord | UnreadableRow]
    next_cursor: str | None


async def live_page(request: func.HttpRequest) -> LivePage:
    """One page of live jobs by the request's `limit`, `cursor`, `state`, `prompt_type`,
    `from` and `to` (the listing's and the dashboard's query), in exec_at order."""
    limit = query_int(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    state = request.params.get("state") or None
    if state is not None and state not in LIVE_STATES:
        raise invalid_query(f"state must be one of {', '.join(sorted(LIVE_STATES))}")
    scope = job_range(request)
    scope_key = cursor_scope(scope, state)
    token = cursor_token(request, scope_key)
    records, token, _ = await read_live(scope, state, limit, token)
    return LivePage(records, encode_cursor(token, scope_key) if token else None)


def job_range(request: func.HttpRequest) -> DueRange:
    """The jobs a listing or a bulk cancel covers: `from`, `to`, `prompt_type`, `label`."""
    return DueRange(
        due_from=query_time(request, "from"),
        due_to=query_time(request, "to"),
        prompt_type=request.params.get("prompt_type") or None,
        labels=label_filters(request),
    )


def label_filters(request: func.HttpRequest) -> tuple[tuple[str, str], ...]:
    """Every `label=key=value` of the query (repeated: all of them must match), sorted.

    Read from the URL: a mapping of parameters keeps one value per name."""
    query = urlsplit(request.url).query
    # `?label=` is the parameter left out, as for every query parameter (http_io's readers).
    given = [value for name, value in parse_qsl(query) if name == "label" and value]
    if not given and request.params.get("label"):
        given = [request.params["label"]]
    if len(given) > MAX_LABELS:
        raise invalid_query(f"at most {MAX_LABELS} label filters")
    try:
        return tuple(sorted({parse_label_filter(value) for value in given}))
    except InvalidLabelFilter as error:
        raise invalid_query(str(error)) from None


async def read_live(
    scope: DueRange, state: str | None, limit: int, token: ContinuationToken | None
) -> tuple[list[JobRecord | UnreadableRow], ContinuationToken | None, int]:
    """The live jobs of one page of the due index (up to `limit` rows from `token`), where the
    next page starts, and how many rows were read. A job that cannot be read is listed as
    what could be read of it. With labels, a page of the first label's index instead."""
    if scope.labels:
        return await _read_labelled(scope, state, limit, token)
    deps = dependencies.current()
    settings = deps.settings()
    store = deps.job_store(settings)
    entries, stored, token = await index_page_jobs(
        store, lambda: store.due_page(scope, limit, token)
    )
    records: list[JobRecord | UnreadableRow] = []
    now = deps.clock()
    holds = key_check(deps, settings)
    for entry, found in zip(entries, stored, strict=True):
        if isinstance(found, UnreadableRow):
            if lists_unreadable(entry, found) and state in (None, found.state):
                records.append(found)
            continue
        record = found.record if found is not None else None
        verdict = row_verdict(entry, record, now)
        if verdict == "drop":
            await _drop_stale(store, entry)
        elif verdict == "list" and record is not None and state in (None, record.state):
            records.append(shown(record, holds))
    return records, token, len(entries)


class IndexRow(Protocol):
    @property
    def transaction_id(self) -> str: ...


Row = TypeVar("Row", bound=IndexRow)
JobFound = StoredJob | UnreadableRow | None


async def index_page_jobs(
    store: TableJobStore, page: Callable[[], tuple[list[Row], ContinuationToken | None]]
) -> tuple[list[Row], list[JobFound], ContinuationToken | None]:
    """One page of an index's rows, the record each points to (read a few at a time), and
    where the next page starts; a 503 when the store does not answer."""
    try:
        entries, token = await asyncio.to_thread(page)
        stored = await bounded(
            asyncio.to_thread(read_job, store, entry.transaction_id) for entry in entries
        )
    except Exception:
        log.exception("reading a page of jobs failed")
        raise backend_unavailable("answer the job listing") from None
    return entries, stored, token


async def _read_labelled(
    scope: DueRange, state: str | None, limit: int, token: ContinuationToken | None
) -> tuple[list[JobRecord | UnreadableRow], ContinuationToken | None, int]:
    """The live jobs of one page of the label index (the first label's rows, in id order)
    that have every label, state, prompt type and due time asked for. A job whose record
    cannot be read is left out: nothing says it has the labels."""
    deps = dependencies.current()
    settings = deps.settings()
    store = deps.job_store(settings)
    entries, stored, token = await index_page_jobs(
        store, lambda: store.label_page(scope.labels[0], scope.prompt_type, limit, token)
    )
    records: list[JobRecord | UnreadableRow] = []
    now = deps.clock()
    holds = key_check(deps, settings)
    for entry, found in zip(entries, stored, strict=True):
        if isinstance(found, UnreadableRow):
            continue
        record = found.record if found is not None else None
        verdict = label_row_verdict(entry, record, now)
        if verdict == "drop":
            await _drop_stale_label(store, entry)
        elif (
            verdict == "list"
            and record is not None
            and state in (None, record.state)
            and scope.covers(record)
        ):
            records.append(shown(record, holds))
    return records, token, len(entries)


async def _drop_stale_label(store: TableJobStore, entry: LabelEntry) -> None:
    try:
        await asyncio.to_thread(store.drop_label_entry, entry)
    except Exception:
        log.warning("could not drop a stale label row of %s", entry.transaction_id, exc_info=True)


def lists_unreadable(entry: DueEntry, row: UnreadableRow) -> bool:
    """Whether an index row stands for the unreadable job it points to: unless what could be
    read says the row is of another time or generation, or the job has ended."""
    if row.state is not None and row.state not in LIVE_STATES:
        return False
    if row.generation is not None and row.generation != entry.generation:
        return False
    return row.exec_at is None or row.exec_at == entry.exec_at


def cursor_token(request: func.HttpRequest, scope_key: str) -> ContinuationToken | None:
    """Where the request's `cursor` says to go on, if it belongs to this listing; else 400."""
    cursor = request.params.get("cursor")
    if not cursor:
        return None
    try:
        return decode_cursor(cursor, scope_key)
    except InvalidCursor as error:
        raise problem(400, "invalid-cursor", "Invalid cursor", str(error)) from None


def cursor_scope(scope: DueRange, state: str | None) -> str:
    """The listing a cursor belongs to: a cursor of one listing is refused by another."""
    listing = (scope.due_from, scope.due_to, scope.prompt_type, state)
    # Labelled listings page through another index: their cursors are of another kind.
    return repr((*listing, scope.labels) if scope.labels else listing)


async def _drop_stale(store: TableJobStore, entry: DueEntry) -> None:
    # The job ended (or never came to be) and its row outlived it; the next reader is
    # spared it. Only the version read is dropped: a row written again since stays.
    try:
        await asyncio.to_thread(store.drop_entry, entry)
    except Exception:
        log.warning("could not drop a stale index row of %s", entry.transaction_id, exc_info=True)


def query_time(request: func.HttpRequest, name: str) -> datetime | None:
    raw = request.params.get(name)
    if not raw:
        return None
    try:
        return parse_exec_at(raw)
    except ExecAtError:
        raise invalid_query(f"{name} must be an RFC 3339 date and time with an offset") from None


def invalid_query(detail: str) -> Exception:
    return problem(400, "invalid-query", "Invalid query parameter", detail)


async def job_status(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    """The job's record (an allowlist of its fields); with `history=true`, its orchestration."""
    checked_id(transaction_id)
    deps = dependencies.current()
    store = deps.job_store(deps.settings())
    history = query_flag(request, "history")
    try:
        found = await asyncio.to_thread(read_job, store, transaction_id)
    except Exception:
        log.exception("reading %s failed", transaction_id)
        raise backend_unavailable("answer the job read") from None
    if found is None:
        raise not_found(f"no job with transaction id {transaction_id}")
    if isinstance(found, UnreadableRow):
        return json_response(unreadable_view(found))
    record = found.record
    if isinstance(seen := shown(record, key_check(deps, deps.settings())), UnreadableRow):
        return json_response(unreadable_view(seen))
    body = status_view(record)
    if history:
        status = await status_of(client, record.instance_id, True)
        _add_waiting(body, status)
        body["orchestration"] = _orchestration(status)
    elif may_wait_for_a_slot(record, deps.clock()):
        try:
            _add_waiting(body, await status_of(client, record.instance_id))
        except Exception:
            # The record answers the status; whether it waits for a slot is only a detail.
            log.warning("the orchestration of %s did not answer", transaction_id)
    return json_response(body)


def _add_waiting(body: dict[str, Any], status: Any) -> None:
    """The orchestration's word that the job waits for a slot of its flow key, if it does."""
    if waiting := slot_wait_view(decode_durable_json(getattr(status, "custom_status", None))):
        body["waiting"] = waiting


def _orchestration(status: Any) -> dict[str, Any] | None:
    """The orchestration's durable status: ids, times and states only, by construction.

    Only the envelope's own JSON fields are decoded, once each: never strings inside them.
    """
    if not status:
        return None  # purged, or never started
    runtime = getattr(status.runtime_status, "value", status.runtime_status)
    # The extension answers `historyEvents`; the SDK keeps unknown keys as attributes.
    events = status.history or getattr(status, "historyEvents", None) or []
    return {
        "runtime_status": runtime,
        "created_time": _iso(status.created_time),
        "last_updated_time": _iso(status.last_updated_time),
        "input": decode_durable_json(status.input_),
        "output": decode_durable_json(status.output),
        "custom_status": decode_durable_json(status.custom_status),
        "history": [_event(event) for event in events if isinstance(event, dict)],
    }


def _event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        name: decode_durable_json(value) if name in ("Input", "Result") else value
        for name, value in event.items()
    }


def _iso(moment: Any) -> str | None:
    return format_utc(moment) if isinstance(moment, datetime) else None


async def preview_schedule(request: func.HttpRequest) -> func.HttpResponse:
    """The first `count` fire times a create of this schedule would get now (the first at
    least MIN_LEAD_SECONDS away, as for a create), creating nothing."""
    params = request.params
    deps = dependencies.current()
    count = query_int(request, "count", DEFAULT_PREVIEW, 1, MAX_PREVIEW)
    try:
        recurrence = Recurrence.model_validate(
            {
                name: params[name]
                for name in ("cron", "timezone", "dst_gap", "dst_fold", "start_at", "end_at")
                if params.get(name)
            }
        )
        upcoming = first_runs(
            recurrence, deps.clock(), min_lead_seconds=deps.settings().min_lead_seconds, count=count
        )
        if not upcoming:
            raise RecurrenceError("cron", "the schedule has no run in the future")
    except ValidationError as error:
        raise validation_problem("the schedule is not valid", field_errors(error)) from None
    except RecurrenceError as error:
        raise validation_problem(
            str(error), [FieldError(loc=[error.field], msg=str(error), type="schedule")]
        ) from None
    return json_response(FireTimes(fire_times=upcoming).model_dump(mode="json"))
