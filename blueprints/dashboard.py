"""The admin dashboard's routes, under /api/dashboard (see docs/dashboard.md).

Only `GET /api/dashboard` has the admin auth level: the host checks the key there, and the
app answers with a session cookie. The Functions host cannot check a cookie, so the other
dashboard routes are anonymous to the host and check the session themselves (every one
goes through `dashboard_web.guarded`), and their forms carry a CSRF token.
Handlers are imported on first call: import time is cold-start time.
"""

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()
ANONYMOUS = func.AuthLevel.ANONYMOUS  # to the host: the app checks the session cookie


@bp.route(route="dashboard", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
async def dashboard_sign_in(req: func.HttpRequest) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    return await guarded(req, lambda: dashboard_pages.sign_in(req), signed_in=False)


@bp.route(route="dashboard/jobs", methods=["GET"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def dashboard_pending(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    return await guarded(req, lambda: dashboard_pages.pending(req, client))


@bp.route(route="dashboard/recurring", methods=["GET"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def dashboard_recurring(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    return await guarded(req, lambda: dashboard_pages.recurring(req, client))


@bp.route(route="dashboard/charts", methods=["GET"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def dashboard_charts(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    return await guarded(req, lambda: dashboard_pages.charts(req, client))


@bp.route(route="dashboard/failed", methods=["GET"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def dashboard_failed(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    return await guarded(req, lambda: dashboard_pages.failed(req, client))


@bp.route(route="dashboard/failed/clear", methods=["POST"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def dashboard_clear_failed(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    return await guarded(req, lambda: dashboard_pages.clear_failed(req, client))


@bp.route(route="dashboard/jobs/{transaction_id}", methods=["GET"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def dashboard_timeline(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    job = req.route_params["transaction_id"]
    return await guarded(req, lambda: dashboard_pages.timeline(req, client, job))


@bp.route(route="dashboard/jobs/{transaction_id}/{action}", methods=["POST"], auth_level=ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def dashboard_action(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    job, action = req.route_params["transaction_id"], req.route_params["action"]
    return await guarded(req, lambda: dashboard_pages.act(req, client, job, action))


@bp.route(route="dashboard/sign-out", methods=["POST"], auth_level=ANONYMOUS)
async def dashboard_sign_out(req: func.HttpRequest) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    return await guarded(req, lambda: dashboard_pages.sign_out(req))


@bp.route(route="dashboard/signed-out", methods=["GET"], auth_level=ANONYMOUS)
async def dashboard_signed_out(req: func.HttpRequest) -> func.HttpResponse:
    from blueprints import dashboard_pages
    from blueprints.dashboard_web import guarded

    return await guarded(req, lambda: dashboard_pages.signed_out(req), signed_in=False)


# A public stylesheet: nothing in it is secret, and pages may load it before signing in.
@bp.route(route="dashboard/assets/dashboard.css", methods=["GET"], auth_level=ANONYMOUS)
async def dashboard_stylesheet(req: func.HttpRequest) -> func.HttpResponse:
    from blueprints.dashboard_web import stylesheet

    return stylesheet()
