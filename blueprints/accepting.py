"""Accepting a job: validate everything, honour an Idempotency-Key, register, then start."""

import logging
import uuid
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import ValidationError

from blueprints import dependencies, registry_client
from blueprints.http_io import json_response, origin_of, read_json_body
from blueprints.instances import ORCHESTRATOR, backend_unavailable, job_of, status_or_none
from blueprints.job_logs import record_lifecycle
from scheduling.idempotency import InvalidIdempotencyKey, request_fingerprint, transaction_id_for
from scheduling.models import Job, ScheduleRequest
from scheduling.problems import (
    FieldError,
    ProblemError,
    field_errors,
    problem,
    validation_problem,
)
from scheduling.prompts import UnknownPromptType, parse_payload
from scheduling.registry import shard_for
from scheduling.settings import SchedulerSettings
from scheduling.timing import ExecAtError, check_schedule_window, format_utc, parse_exec_at

IDEMPOTENCY_HEADER = "Idempotency-Key"
log = logging.getLogger(__name__)


async def create_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    deps = dependencies.current()
    settings = deps.settings()
    fields = _validated_job_fields(read_json_body(request, settings.max_request_bytes), settings)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        transaction_id, fingerprint = str(uuid.uuid4()), None
    else:
        transaction_id, fingerprint = _idempotent_id(key), request_fingerprint(fields)
        earlier = await status_or_none(client, transaction_id)
        if earlier is not None:
            # Before the time-window check: a retry that arrives after exec_at came too
            # close still gets the first answer.
            return _replay(request, job_of(earlier), fingerprint)
    _check_window(fields["exec_at"], settings)

    job = Job(
        **fields,
        transaction_id=transaction_id,
        accepted_at=deps.clock(),
        registry_shard=shard_for(transaction_id, settings.registry_shards),
        request_fingerprint=fingerprint,
    )
    # Register before starting. The orchestration claims the entry no sooner than
    # MIN_LEAD_SECONDS later, and waits a while for a registration still on its way.
    try:
        await registry_client.register(client, job)
    except Exception:
        log.exception("registering %s failed", transaction_id)
        raise backend_unavailable("accept the job; nothing was scheduled") from None
    try:
        await client.start_new(ORCHESTRATOR, transaction_id, job.model_dump(mode="json"))
    except Exception:
        log.exception("starting %s failed", transaction_id)
        started = await _started_anyway(client, job)
        if started is None:
            raise backend_unavailable("start the job; nothing was scheduled") from None
        if started.accepted_at != job.accepted_at:
            return _replay(request, started, fingerprint)
    await record_lifecycle(
        transaction_id,
        "accepted",
        f"{job.prompt_type} accepted for {format_utc(job.exec_at)}",
        prompt_type=job.prompt_type,
        exec_at=format_utc(job.exec_at),
    )
    return _accepted(request, transaction_id, format_utc(job.exec_at))


def _validated_job_fields(body: Any, settings: SchedulerSettings) -> dict[str, Any]:
    """What the request asks for, normalised; a 422 naming every problem otherwise."""
    deps = dependencies.current()
    try:
        schedule = ScheduleRequest.model_validate(body)
    except ValidationError as error:
        raise validation_problem("the schedule request is not valid", field_errors(error)) from None
    try:
        payload = parse_payload(
            schedule.prompt_type, schedule.payload, dependencies.payload_rules(deps, settings)
        )
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
    return {
        "exec_at": format_utc(schedule.exec_at),
        "prompt_type": schedule.prompt_type,
        "payload": payload.model_dump(mode="json", by_alias=True, exclude_unset=True),
        "retry": schedule.retry.model_dump(mode="json"),
    }


def _check_window(exec_at: str, settings: SchedulerSettings) -> None:
    try:
        check_schedule_window(
            parse_exec_at(exec_at),
            dependencies.current().clock(),
            min_lead_seconds=settings.min_lead_seconds,
            max_horizon_days=settings.max_horizon_days,
        )
    except ExecAtError as error:
        raise validation_problem(
            str(error), [FieldError(loc=["exec_at"], msg=str(error), type=error.rule)]
        ) from None


async def _started_anyway(client: df.DurableOrchestrationClient, job: Job) -> Job | None:
    """After a failed start: the job that stands under this id, or None (registration undone).

    The start can fail after the extension accepted it (a timeout), or because a concurrent
    request with the same Idempotency-Key won; then that instance's job is the one to keep.
    """
    try:
        existing = await status_or_none(client, job.transaction_id)
    except ProblemError:
        raise problem(
            503,
            "backend-unavailable",
            "Backend unavailable",
            "the backend did not confirm the start: the job may have been scheduled; "
            "send the request with an Idempotency-Key to retry it safely",
        ) from None
    standing = job_of(existing) if existing is not None else None
    if standing is not None and standing.accepted_at == job.accepted_at:
        return standing  # our own start went through after all
    # Ours will never run: make sure our registration cannot come back, however late.
    await registry_client.bury_quietly(client, job.registry_shard, registry_client.ref_of(job))
    if standing is None:
        return None
    try:
        # The winner's registration must be the one in place, whatever the shard saw first.
        await registry_client.register(client, standing)
    except Exception:
        log.exception("re-registering %s failed", standing.transaction_id)
    return standing


def _idempotent_id(key: str) -> str:
    try:
        return transaction_id_for(key)
    except InvalidIdempotencyKey as error:
        raise problem(
            400, "invalid-idempotency-key", "Invalid Idempotency-Key", str(error)
        ) from None


def _replay(
    request: func.HttpRequest, earlier: Job | None, fingerprint: str | None
) -> func.HttpResponse:
    """The first request's answer again, or 409 when the key was used for something else."""
    if earlier is None or earlier.request_fingerprint != fingerprint:
        raise problem(
            409,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was already used for a different request",
        )
    return _accepted(request, earlier.transaction_id, format_utc(earlier.exec_at), replayed=True)


def _accepted(
    request: func.HttpRequest, transaction_id: str, exec_at: str, *, replayed: bool = False
) -> func.HttpResponse:
    status_url = f"{origin_of(request)}/api/schedule/{transaction_id}/status"
    headers = {"Location": status_url}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(
        {"transaction_id": transaction_id, "exec_at": exec_at, "status_url": status_url},
        status=202,
        headers=headers,
    )
