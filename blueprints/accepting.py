"""Accepting a job: validate everything, honour an Idempotency-Key, register, then start."""

import logging
import uuid
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from pydantic import ValidationError

from blueprints import dependencies
from blueprints.durable_state import (
    ORCHESTRATOR,
    backend_unavailable,
    decoded_input,
    record_lifecycle,
    registry_entity,
    status_or_none,
    unregister_quietly,
)
from blueprints.http_io import json_response, origin_of, read_json_body
from scheduling.idempotency import InvalidIdempotencyKey, request_fingerprint, transaction_id_for
from scheduling.models import Job, ScheduleRequest
from scheduling.problems import FieldError, field_errors, problem, validation_problem
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
            return _replay(request, decoded_input(earlier), fingerprint)
    _check_window(fields["exec_at"], settings)

    job = Job(
        **fields,
        transaction_id=transaction_id,
        accepted_at=deps.clock(),
        registry_shard=shard_for(transaction_id, settings.registry_shards),
        request_fingerprint=fingerprint,
    )
    job_json = job.model_dump(mode="json")
    # Register before starting: the orchestration's claim then always finds the entry,
    # as messages to one entity are processed in the order they were sent.
    try:
        await client.signal_entity(registry_entity(job.registry_shard), "add", {"job": job_json})
    except Exception:
        log.exception("registering %s failed", transaction_id)
        raise backend_unavailable("accept the job; nothing was scheduled") from None
    try:
        await client.start_new(ORCHESTRATOR, transaction_id, job_json)
    except Exception:
        # With a key, the start fails when a concurrent request with that key won the race;
        # its job (and registry entry, which our add left untouched) is the one that stands.
        winner = await status_or_none(client, transaction_id) if key is not None else None
        if winner is not None:
            return _replay(request, decoded_input(winner), fingerprint)
        log.exception("starting %s failed", transaction_id)
        await unregister_quietly(client, job.registry_shard, transaction_id)
        raise backend_unavailable("start the job; nothing was scheduled") from None
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


def _idempotent_id(key: str) -> str:
    try:
        return transaction_id_for(key)
    except InvalidIdempotencyKey as error:
        raise problem(
            400, "invalid-idempotency-key", "Invalid Idempotency-Key", str(error)
        ) from None


def _replay(
    request: func.HttpRequest, earlier: dict[str, Any], fingerprint: str | None
) -> func.HttpResponse:
    """The first request's answer again, or 409 when the key was used for something else."""
    if earlier.get("request_fingerprint") != fingerprint:
        raise problem(
            409,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was already used for a different request",
        )
    return _accepted(
        request, str(earlier["transaction_id"]), str(earlier["exec_at"]), replayed=True
    )


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
