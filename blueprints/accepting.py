"""Accepting a job: validate everything, seal the payload, store the record, then start.

Whole at ~460 lines: one create path, read top to bottom in the order a request takes it
(a batch's items take it too), so no step can be skipped unseen.
"""

import asyncio
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel, ValidationError

from api.job_views import next_fire_at
from api.problems import (
    FieldError,
    field_errors,
    problem,
    validation_problem,
)
from api.responses import AcceptedJob
from blueprints import dependencies
from blueprints.http_io import json_response, origin_of, read_json_body
from blueprints.instances import backend_unavailable, orchestration_runs, start_orchestration
from blueprints.job_logs import record_lifecycle
from blueprints.unreadable import read_job, unreadable_conflict
from delivery.prompts import (
    PayloadRules,
    UnknownPromptType,
    destination_of,
    flow_key_of,
    parse_payload,
)
from scheduling.flow_control import FlowLimitError, FlowLimits, flow_for
from scheduling.idempotency import (
    FingerprintKeyMissing,
    InvalidIdempotencyKey,
    fingerprint_key,
    request_fingerprint,
    transaction_id_for,
)
from scheduling.job_record import (
    LIVE_STATES,
    JobRecord,
    callbacks_sealing_context,
    sealing_context,
)
from scheduling.log_context import name_job
from scheduling.metrics import job_attributes, job_metrics
from scheduling.models import Callbacks, ScheduleRequest
from scheduling.redaction import redact_url
from scheduling.settings import SchedulerSettings
from scheduling.when import FirstRun, ScheduleError, first_run
from storage.batch_writes import BatchWrites
from storage.job_log.lifecycle import accepted_entry
from storage.job_rows import UnreadableRow, due_keys
from storage.job_store import JobExists, LabelEntry, StaleRecord, StoredJob, TableJobStore
from storage.sealing import SealingNotConfigured

IDEMPOTENCY_HEADER = "Idempotency-Key"
log = logging.getLogger(__name__)


async def create_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    deps = dependencies.current()
    settings = deps.settings()
    body = read_json_body(request, settings.max_request_bytes)
    store = deps.job_store(settings)
    ready = await prepare_job(client, store, body, request.headers.get(IDEMPOTENCY_HEADER))
    if isinstance(ready, PreparedJob):
        ready = await store_and_start(client, store, ready)
    return _accepted(request, ready.record, replayed=ready.replayed)


@dataclass(frozen=True)
class PreparedJob:
    """A job checked and sealed, not yet stored."""

    record: JobRecord
    fingerprint: str | None


@dataclass(frozen=True)
class IndexRows:
    """The index rows a create wrote for its job, by version (ETag): what its take-back may
    drop, and nothing a retry with the same key has written again since."""

    due_etag: str
    labels: list[LabelEntry]


@dataclass(frozen=True)
class AcceptedRecord:
    """A job accepted now, or (`replayed`) by an earlier request with the same key."""

    record: JobRecord
    replayed: bool = False


async def prepare_job(
    client: df.DurableOrchestrationClient, store: TableJobStore, body: Any, key: str | None
) -> PreparedJob | AcceptedRecord:
    """Check what the body asks for and seal it; with a key seen before, the earlier job
    (started if its create died before starting it). A problem (ProblemError) otherwise."""
    settings = dependencies.current().settings()
    schedule, fields, payload = _validated_job_fields(body, settings)
    flow = _flow(schedule, payload, settings)
    if key is None:
        transaction_id, fingerprint = str(uuid.uuid4()), None
    else:
        transaction_id = _idempotent_id(key)
        fingerprint = request_fingerprint(fields, _fingerprint_key(settings))
        earlier = await _read(store, transaction_id)
        if earlier is not None:
            # Before the time-window check: a retry that arrives after exec_at came too
            # close still gets the first answer.
            return await _replay(client, store, earlier, fingerprint)
    first = _first_run(schedule, settings)

    name_job(transaction_id)
    record = await _sealed_record(
        transaction_id, fields, payload, schedule.callbacks, first, fingerprint, settings, flow
    )
    return PreparedJob(record, fingerprint)


async def store_and_start(
    client: df.DurableOrchestrationClient,
    store: TableJobStore,
    prepared: PreparedJob,
    *,
    batch: BatchWrites | None = None,
    indexed: IndexRows | None = None,
    log_accepted: bool = True,
) -> AcceptedRecord:
    """Store the job and start its orchestration. `batch`: the batch's writes, which insert
    the record; `indexed`: its index rows, written already (a batch writes them together);
    without `log_accepted`, its `accepted` log entry is left to be derived from its record
    (on every read of its log, and written before the record goes): one write fewer per job
    of a batch. A problem (ProblemError) when nothing was scheduled; accepted when the job
    may run (repair_stalled_jobs starts a stalled one)."""
    record = prepared.record
    transaction_id = record.transaction_id
    try:
        if indexed is None:
            # The index first: it must list every live job (a wipe finds jobs through it);
            # a row whose record never comes is dropped by a later reader.
            due_etag = await asyncio.to_thread(store.index, record)
            labels = await asyncio.to_thread(store.index_labels, [record]) if record.labels else []
            indexed = IndexRows(due_etag, labels)
        if batch is None:
            stored = await asyncio.to_thread(store.create, record)
        else:
            stored = await batch.create(record)
    except JobExists:
        earlier = await _read(store, transaction_id)  # a concurrent request with the key won
        if earlier is None:
            raise backend_unavailable("settle a concurrent request with this key; retry") from None
        await asyncio.to_thread(_restore_index, store, earlier.record, record)
        return await _replay(client, store, earlier, prepared.fingerprint)
    except Exception:
        log.exception("storing %s failed", transaction_id)
        raise backend_unavailable("store the job; nothing was scheduled") from None
    try:
        await start_orchestration(client, record)
    except Exception:
        log.exception("starting %s failed", transaction_id)
        if await orchestration_runs(client, record) or not await _withdraw(store, stored, indexed):
            return AcceptedRecord(record)
    if log_accepted:
        await record_lifecycle(accepted_entry(record))
    job_metrics().accepted.add(1, job_attributes(record.prompt_type, record.destination))
    return AcceptedRecord(record)


async def _ensure_started(
    client: df.DurableOrchestrationClient, store: TableJobStore, earlier: StoredJob
) -> None:
    """Start a live job's orchestration if it is not running: a create that stored the
    record but died (or failed) before starting it is finished by the retry with its key.

    The record is touched (a compare-and-swap) before the start: a creator taking its
    record back at that moment then loses its swap and answers 202 too, instead of
    deleting a job this answer says is accepted.
    """
    record = earlier.record
    if record.state not in ("pending", "retrying") or await orchestration_runs(client, record):
        return
    touched = record.model_copy(update={"updated_at": dependencies.current().clock()})
    try:
        await asyncio.to_thread(store.replace, earlier, touched)
    except StaleRecord:
        raise backend_unavailable("settle a concurrent request with this key; retry") from None
    try:
        await start_orchestration(client, touched)
    except Exception:
        if not await orchestration_runs(client, touched):
            log.exception("starting %s on a replay failed", record.transaction_id)
            raise backend_unavailable("start the job; send the request again") from None


def _restore_index(store: TableJobStore, standing: JobRecord, ours: JobRecord) -> None:
    """After losing the insert: the standing job's row back, ours (if another row) gone."""
    try:
        store.index(standing)
        if due_keys(ours.exec_at, ours.transaction_id) != due_keys(
            standing.exec_at, standing.transaction_id
        ):
            store.unindex(ours.transaction_id, ours.exec_at)
        if standing.state in LIVE_STATES:
            store.index_labels([standing])
        theirs = standing.labels if standing.state in LIVE_STATES else {}
        ours_only = {k: v for k, v in ours.labels.items() if theirs.get(k) != v}
        store.unindex_labels(ours.transaction_id, ours_only)
    except Exception:
        log.warning("could not restore the index row of %s", standing.transaction_id, exc_info=True)


async def _read(store: TableJobStore, transaction_id: str) -> StoredJob | None:
    try:
        found = await asyncio.to_thread(read_job, store, transaction_id)
    except Exception:
        log.exception("reading %s failed", transaction_id)
        raise backend_unavailable("answer the job read") from None
    if isinstance(found, UnreadableRow):
        raise unreadable_conflict(found)
    return found


async def _sealed_record(
    transaction_id: str,
    fields: dict[str, Any],
    payload: BaseModel,
    callbacks: Callbacks | None,
    first: FirstRun,
    fingerprint: str | None,
    settings: SchedulerSettings,
    flow: FlowLimits | None,
) -> JobRecord:
    deps = dependencies.current()
    now = deps.clock()
    generation = uuid.uuid4().hex
    plaintext = json.dumps(fields["payload"], separators=(",", ":")).encode()
    try:
        sealer = deps.sealer(settings)
    except SealingNotConfigured:
        # Logged where it was found, with which setting is wrong (never its value).
        raise problem(
            503,
            "not-configured",
            "Not configured",
            "payloads cannot be sealed on this app: its key-encryption key setting "
            "(SEALING_KEY_VAULT_KEY_URL or SEALING_KEYS) is missing or malformed; nothing was "
            "scheduled (the app's log and /api/healthz/details say which)",
        ) from None
    try:
        # In Azure this wraps the data key with Key Vault: a network call, off the event loop.
        sealed = await asyncio.to_thread(
            sealer.seal, plaintext, sealing_context(transaction_id, now)
        )
        # The callback URLs may carry tokens too: sealed apart, bound to their own context.
        sealed_callbacks = None
        if callbacks is not None:
            sealed_callbacks = await asyncio.to_thread(
                sealer.seal,
                json.dumps(callbacks.urls(), separators=(",", ":")).encode(),
                callbacks_sealing_context(transaction_id, now),
            )
    except Exception:
        log.exception("sealing the payload of %s failed", transaction_id)
        raise backend_unavailable("seal the payload; nothing was scheduled") from None
    return JobRecord(
        transaction_id=transaction_id,
        generation=generation,
        state="pending",
        prompt_type=fields["prompt_type"],
        exec_at=first.at,
        recurrence=first.recurrence,
        accepted_at=now,
        updated_at=now,
        retry=fields["retry"],
        destination=destination_of(payload),
        flow=flow,
        request_fingerprint=fingerprint,
        sealed_payload=sealed,
        callbacks=(
            None
            if callbacks is None
            else {kind: redact_url(url) for kind, url in callbacks.urls().items()}
        ),
        sealed_callbacks=sealed_callbacks,
        labels=fields.get("labels") or {},
    )


async def _withdraw(store: TableJobStore, stored: StoredJob, indexed: IndexRows) -> bool:
    """Take back a job whose orchestration may not have started; False if it runs already.

    Deleting the record is enough even if the start did go through: an orchestration
    without its record (of its generation) ends without doing anything. Its index rows go
    too, each only as the version this create wrote: a retry with the same key may have
    written the same rows again meanwhile, for the job it creates, and those stay.
    """
    record = stored.record
    try:
        await asyncio.to_thread(store.delete, stored)
    except StaleRecord:
        return False  # the start went through and the job has already claimed it: it runs
    except Exception:
        log.exception("withdrawing %s failed", record.transaction_id)
        raise problem(
            503,
            "backend-unavailable",
            "Backend unavailable",
            "the backend did not confirm the start: the job may have been scheduled; "
            "send the request with an Idempotency-Key to retry it safely",
        ) from None
    try:
        # A row whose version is not known is left to readers rather than dropped blind.
        if indexed.due_etag:
            await asyncio.to_thread(
                store.unindex, record.transaction_id, record.exec_at, indexed.due_etag
            )
        for entry in indexed.labels:
            if entry.etag:
                await asyncio.to_thread(store.drop_label_entry, entry)
    except Exception:
        # Left to readers: skipped while young, dropped once old (index_upkeep).
        log.warning("could not drop the index rows of %s", record.transaction_id, exc_info=True)
    raise backend_unavailable("start the job; nothing was scheduled")


def _fingerprint_key(settings: SchedulerSettings) -> bytes:
    try:
        return fingerprint_key(settings.request_fingerprint_key.get_secret_value())
    except FingerprintKeyMissing as error:
        log.error("idempotent create refused: %s", error)
        raise problem(
            503,
            "not-configured",
            "Not configured",
            "idempotent creates are not configured on this app (REQUEST_FINGERPRINT_KEY)",
        ) from None


def _validated_job_fields(
    body: Any, settings: SchedulerSettings
) -> tuple[ScheduleRequest, dict[str, Any], BaseModel]:
    """What the request asks for, normalised; a 422 naming every problem otherwise."""
    deps = dependencies.current()
    try:
        schedule = ScheduleRequest.model_validate(body)
    except ValidationError as error:
        raise validation_problem("the schedule request is not valid", field_errors(error)) from None
    rules = dependencies.payload_rules(deps, settings)
    _vet_callbacks(schedule.callbacks, rules)
    try:
        payload = parse_payload(schedule.prompt_type, schedule.payload, rules)
    except UnknownPromptType as error:
        raise validation_problem(
            str(error),
            [FieldError(loc=["prompt_type"], msg=str(error), type="unknown_prompt_type")],
        ) from None
    except ValidationError as error:
        raise validation_problem(
            f"the payload is not a valid {schedule.prompt_type} payload",
            field_errors(error, prefix=["payload"]),
        ) from None
    # What was asked for, normalised (times in UTC, defaults filled): the fingerprint's input.
    fields = {
        **schedule.model_dump(mode="json", exclude_none=True),
        "payload": payload.model_dump(mode="json", by_alias=True, exclude_unset=True),
    }
    return schedule, fields, payload


def _vet_callbacks(callbacks: Callbacks | None, rules: PayloadRules) -> None:
    """Callback URLs go where an http.call may go: the same destination rules, now and when
    they are called."""
    if callbacks is None:
        return
    errors = []
    for kind, url in callbacks.urls().items():
        try:
            rules.vet_url(url)
        except ValueError as error:
            errors.append(FieldError(loc=["callbacks", kind], msg=str(error), type="url_refused"))
    if not callbacks.urls():
        errors.append(
            FieldError(loc=["callbacks"], msg="give on_success, on_failure or both", type="missing")
        )
    if errors:
        raise validation_problem("a callback URL is not valid", errors)


def _flow(
    schedule: ScheduleRequest, payload: BaseModel, settings: SchedulerSettings
) -> FlowLimits | None:
    try:
        return flow_for(schedule.flow_control, flow_key_of(payload), settings)
    except FlowLimitError as error:
        raise validation_problem(
            str(error),
            [FieldError(loc=["flow_control", error.field], msg=str(error), type=error.kind)],
        ) from None


def _first_run(schedule: ScheduleRequest, settings: SchedulerSettings) -> FirstRun:
    try:
        return first_run(
            schedule,
            dependencies.current().clock(),
            min_lead_seconds=settings.min_lead_seconds,
            max_horizon_days=settings.max_horizon_days,
        )
    except ScheduleError as error:
        raise validation_problem(
            str(error), [FieldError(loc=[error.field], msg=str(error), type=error.rule)]
        ) from None


def _idempotent_id(key: str) -> str:
    try:
        return transaction_id_for(key)
    except InvalidIdempotencyKey as error:
        raise problem(
            400, "invalid-idempotency-key", "Invalid Idempotency-Key", str(error)
        ) from None


async def _replay(
    client: df.DurableOrchestrationClient,
    store: TableJobStore,
    stored: StoredJob,
    fingerprint: str | None,
) -> AcceptedRecord:
    """The first request's job again, or 409 when the key was used for something else."""
    earlier = stored.record
    if earlier.request_fingerprint is None or not hmac.compare_digest(
        earlier.request_fingerprint, fingerprint or ""
    ):
        raise problem(
            409,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was already used for a different request",
        )
    await _ensure_started(client, store, stored)
    return AcceptedRecord(earlier, replayed=True)


def _accepted(
    request: func.HttpRequest, record: JobRecord, *, replayed: bool = False
) -> func.HttpResponse:
    """202: the job's id, when it (next) fires, and where to read it."""
    accepted = accepted_job(origin_of(request), record)
    headers = {"Location": accepted.status_url}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(accepted.model_dump(mode="json"), status=202, headers=headers)


def accepted_job(origin: str, record: JobRecord) -> AcceptedJob:
    """The job's id, when it (next) fires, and where to read it."""
    return AcceptedJob(
        transaction_id=record.transaction_id,
        state=record.state,
        exec_at=record.exec_at,
        # None once the job has ended or was deleted: a replay says so.
        next_fire_at=next_fire_at(record),
        status_url=f"{origin}/api/schedule/{record.transaction_id}/status",
    )
