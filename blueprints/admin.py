"""Health (anonymous: status only; details with the master key) and the old Durable app's admin
routes, on the same handlers as the public API."""

import importlib.metadata
import logging
import os
import platform

import azure.durable_functions as df
import azure.functions as func

from blueprints.http_io import json_response, problem_responses

bp = df.Blueprint()
ADMIN = func.AuthLevel.ADMIN
HEALTH_PROBE_ID = "healthz-probe"
BACKEND_UNAVAILABLE = "the durable backend did not answer"
log = logging.getLogger(__name__)


@bp.route(route="healthz", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def healthz(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    # Anonymous: whether the app works, nothing that helps pick an exploit (versions) or
    # names internals. The details are one route further, behind the master key.
    from api.responses import Health

    healthy = await _backend_answers(client) and not settings_problems()
    health = Health(status="ok" if healthy else "degraded")
    return json_response(health.model_dump(mode="json"), status=200 if healthy else 503)


# Not "admin/healthz": the Functions host reserves routes that start with "admin".
@bp.route(route="healthz/details", methods=["GET"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
async def healthz_details(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from api.responses import HealthDetails
    from scheduling.zone_data import TZDATA_VERSION

    available = await _backend_answers(client)
    problems = settings_problems()
    healthy = available and not problems
    details = HealthDetails(
        status="ok" if healthy else "degraded",
        python_version=platform.python_version(),
        functions_runtime_version=os.environ.get("FUNCTIONS_EXTENSION_VERSION", "unknown"),
        azure_functions_version=importlib.metadata.version("azure-functions"),
        durable_sdk_version=importlib.metadata.version("azure-functions-durable"),
        tzdata_version=TZDATA_VERSION,
        durable_backend="ok" if available else "unavailable",
        # The reason itself goes to the app's log only: it can name accounts and hosts.
        durable_backend_error=None if available else BACKEND_UNAVAILABLE,
        settings="invalid" if problems else "ok",
        settings_errors=problems or None,
    )
    return json_response(
        details.model_dump(mode="json", exclude_none=True), status=200 if healthy else 503
    )


def settings_problems() -> list[str]:
    """Which app settings keep the app from working, one line each: names and positions of
    entries, never a value (a malformed entry may be key material in the wrong place)."""
    from pydantic import ValidationError

    from blueprints import dependencies
    from scheduling.idempotency import FingerprintKeyMissing, fingerprint_key
    from scheduling.webhook_signing import SigningNotConfigured
    from storage.sealing import SealingNotConfigured

    deps = dependencies.current()
    try:
        settings = deps.settings()
    except ValidationError as error:
        # pydantic's messages quote the input: only the names of the settings at fault.
        names = sorted({str(item["loc"][0]).upper() for item in error.errors() if item["loc"]})
        return [f"{name} is not valid" for name in names] or ["the app settings are not valid"]
    problems = []
    try:
        deps.sealer(settings)
    except SealingNotConfigured as error:
        problems.append(str(error))
    try:
        settings.webhook_signing_keys()
    except SigningNotConfigured as error:
        problems.append(str(error))
    if settings.request_fingerprint_key.get_secret_value().strip():
        try:
            fingerprint_key(settings.request_fingerprint_key.get_secret_value())
        except FingerprintKeyMissing as error:
            problems.append(str(error))
    return problems


async def _backend_answers(client: df.DurableOrchestrationClient) -> bool:
    """Whether the durable backend answers a status read of an id that never exists."""
    from blueprints.instances import is_error_answer

    try:
        status = await client.get_status(HEALTH_PROBE_ID)
    except Exception:
        log.exception("healthz: %s", BACKEND_UNAVAILABLE)
        return False
    if is_error_answer(status):
        log.error(
            "healthz: the durable extension answered with an error: %s",
            getattr(status, "ExceptionMessage", None) or getattr(status, "Message", None),
        )
        return False
    return True


@bp.route(route="schedules", methods=["GET"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def admin_list_jobs(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import jobs

    return await jobs.list_jobs(client, req)


@bp.route(route="status/{instance_id}", methods=["GET"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def admin_job_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import jobs

    return await jobs.job_status(client, req, req.route_params["instance_id"])


@bp.route(route="terminate/{instance_id}", methods=["POST"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def admin_terminate_job(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import removing

    return await removing.delete_job(client, req, req.route_params["instance_id"])


@bp.route(route="wipe", methods=["POST"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def admin_wipe(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import removing

    return await removing.wipe_jobs(client, req)
