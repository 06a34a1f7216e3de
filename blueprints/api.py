"""The public HTTP API under /api/schedule: one route, one job operation.

Each handler module is imported on the route's first call, not here: import time is
cold-start time, and indexing needs only the decorators.
"""

import azure.durable_functions as df
import azure.functions as func

from blueprints.http_io import problem_responses

bp = df.Blueprint()
FUNCTION = func.AuthLevel.FUNCTION


@bp.route(route="schedule", methods=["POST"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def create_job(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import accepting

    return await accepting.create_job(client, req)


@bp.route(route="schedule", methods=["GET"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def list_jobs(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import jobs

    return await jobs.list_jobs(client, req)


# The jobs a filter names (a label, a prompt type, a due time range); a filter is required.
# Every job at once is the admin key's: POST /api/wipe.
@bp.route(route="schedule", methods=["DELETE"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def cancel_jobs(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import removing

    return await removing.cancel_jobs(client, req)


@bp.route(route="schedule/batch", methods=["POST"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def create_batch(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import batch

    return await batch.create_batch(client, req)


@bp.route(route="schedule/{transaction_id}/status", methods=["GET"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def job_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import jobs

    return await jobs.job_status(client, req, req.route_params["transaction_id"])


@bp.route(route="schedule/{transaction_id}/logs", methods=["GET"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def job_log(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import job_logs

    return await job_logs.read_job_log(client, req, req.route_params["transaction_id"])


@bp.route(route="schedule/{transaction_id}", methods=["DELETE"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def delete_job(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import removing

    return await removing.delete_job(client, req, req.route_params["transaction_id"])


@bp.route(route="schedule/preview", methods=["GET"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def preview_schedule(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import jobs

    return await jobs.preview_schedule(req)


@bp.route(route="schedule/{transaction_id}", methods=["PATCH"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def reschedule_job(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import changing

    return await changing.reschedule_job(client, req, req.route_params["transaction_id"])


@bp.route(route="schedule/{transaction_id}/pause", methods=["POST"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def pause_job(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import changing

    return await changing.pause_job(client, req, req.route_params["transaction_id"])


@bp.route(route="schedule/{transaction_id}/resume", methods=["POST"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def resume_job(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import changing

    return await changing.resume_job(client, req, req.route_params["transaction_id"])


@bp.route(route="schedule/{transaction_id}/replay", methods=["POST"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def replay_job(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import changing

    return await changing.replay_job(client, req, req.route_params["transaction_id"])


@bp.route(route="failed", methods=["GET"], auth_level=FUNCTION)
@bp.durable_client_input(client_name="client")
@problem_responses
async def list_failed(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dead_letters

    return await dead_letters.list_failed(client, req)


# Every dead letter at once: the admin (master) key, like the wipe.
@bp.route(route="failed", methods=["DELETE"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
@problem_responses
async def clear_failed(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dead_letters

    return await dead_letters.clear_failed(client, req)
