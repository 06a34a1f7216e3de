"""Health and the old Durable app's admin routes, on the same handlers as the public API."""

import importlib.metadata
import os
import platform

import azure.durable_functions as df
import azure.functions as func

from blueprints import jobs, removing
from blueprints.http_io import json_response, problem_responses

bp = df.Blueprint()
ADMIN = func.AuthLevel.ADMIN
HEALTH_PROBE_ID = "healthz-probe"


@bp.route(route="healthz", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def healthz(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    try:
        # A status read of an id that never exists: cheap, and it needs the backend to answer.
        await client.get_status(HEALTH_PROBE_ID)
        durable_backend, problem = "ok", None
    except Exception as error:
        durable_backend, problem = "unavailable", f"{type(error).__name__}: {error}"
    body = {
        "status": "ok" if problem is None else "degraded",
        "python_version": platform.python_version(),
        "functions_runtime_version": os.environ.get("FUNCTIONS_EXTENSION_VERSION", "unknown"),
        "azure_functions_version": importlib.metadata.version("azure-functions"),
        "durable_sdk_version": importlib.metadata.version("azure-functions-durable"),
        "durable_backend": durable_backend,
    }
    if problem is not None:
        body["durable_backend_error"] = problem
    return json_response(body, status=200 if problem is None else 503)


@bp.route(route="schedules", methods=["GET"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def admin_list_jobs(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    return await jobs.list_jobs(client, req)


@bp.route(route="status/{instance_id}", methods=["GET"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def admin_job_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    return await jobs.job_status(client, req, req.route_params["instance_id"])


@bp.route(route="terminate/{instance_id}", methods=["POST"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def admin_terminate_job(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    return await removing.delete_job(client, req, req.route_params["instance_id"])


@bp.route(route="wipe", methods=["POST"], auth_level=ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def admin_wipe(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    return await removing.wipe_jobs(client, req)
