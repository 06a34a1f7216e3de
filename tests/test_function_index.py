"""The app indexes exactly the functions, routes and triggers the API promises."""

import inspect
import json
from typing import Any

import pytest

from function_app import app
from local_durable_host.worker_calls import index_functions

FUNCTIONS = index_functions(app)

HTTP_ROUTES = {
    # function name: (route, methods, auth level)
    "create_job": ("schedule", ["POST"], "FUNCTION"),
    "list_jobs": ("schedule", ["GET"], "FUNCTION"),
    "cancel_jobs": ("schedule", ["DELETE"], "FUNCTION"),
    "create_batch": ("schedule/batch", ["POST"], "FUNCTION"),
    "job_status": ("schedule/{transaction_id}/status", ["GET"], "FUNCTION"),
    "job_log": ("schedule/{transaction_id}/logs", ["GET"], "FUNCTION"),
    "delete_job": ("schedule/{transaction_id}", ["DELETE"], "FUNCTION"),
    "reschedule_job": ("schedule/{transaction_id}", ["PATCH"], "FUNCTION"),
    "pause_job": ("schedule/{transaction_id}/pause", ["POST"], "FUNCTION"),
    "resume_job": ("schedule/{transaction_id}/resume", ["POST"], "FUNCTION"),
    "preview_schedule": ("schedule/preview", ["GET"], "FUNCTION"),
    "replay_job": ("schedule/{transaction_id}/replay", ["POST"], "FUNCTION"),
    "list_failed": ("failed", ["GET"], "FUNCTION"),
    "clear_failed": ("failed", ["DELETE"], "ADMIN"),
    "healthz": ("healthz", ["GET"], "ANONYMOUS"),
    "healthz_details": ("healthz/details", ["GET"], "ADMIN"),
    "admin_list_jobs": ("schedules", ["GET"], "ADMIN"),
    "admin_job_status": ("status/{instance_id}", ["GET"], "ADMIN"),
    "admin_terminate_job": ("terminate/{instance_id}", ["POST"], "ADMIN"),
    "admin_wipe": ("wipe", ["POST"], "ADMIN"),
    "openapi_document": ("openapi.json", ["GET"], "ANONYMOUS"),
    "api_reference": ("docs", ["GET"], "ANONYMOUS"),
    "api_reference_asset": ("docs/{asset}", ["GET"], "ANONYMOUS"),
    # The dashboard: the host checks the admin key at sign-in; the app checks the session
    # cookie on the others (tests/dashboard/test_dashboard_access.py).
    "dashboard_sign_in": ("dashboard", ["GET"], "ADMIN"),
    "dashboard_pending": ("dashboard/jobs", ["GET"], "ANONYMOUS"),
    "dashboard_recurring": ("dashboard/recurring", ["GET"], "ANONYMOUS"),
    "dashboard_charts": ("dashboard/charts", ["GET"], "ANONYMOUS"),
    "dashboard_failed": ("dashboard/failed", ["GET"], "ANONYMOUS"),
    "dashboard_clear_failed": ("dashboard/failed/clear", ["POST"], "ANONYMOUS"),
    "dashboard_timeline": ("dashboard/jobs/{transaction_id}", ["GET"], "ANONYMOUS"),
    "dashboard_action": ("dashboard/jobs/{transaction_id}/{action}", ["POST"], "ANONYMOUS"),
    "dashboard_sign_out": ("dashboard/sign-out", ["POST"], "ANONYMOUS"),
    "dashboard_signed_out": ("dashboard/signed-out", ["GET"], "ANONYMOUS"),
    "dashboard_stylesheet": ("dashboard/assets/dashboard.css", ["GET"], "ANONYMOUS"),
}
# Routes that describe the API rather than call it.
REFERENCE_ROUTES = {"openapi_document", "api_reference", "api_reference_asset"}
# Without a client binding: they touch no durable state.
NO_DURABLE_CLIENT = {
    *REFERENCE_ROUTES,
    "dashboard_sign_in",
    "dashboard_sign_out",
    "dashboard_signed_out",
    "dashboard_stylesheet",
}
DURABLE_TRIGGERS = {
    "schedule_orchestrator": "orchestrationTrigger",
    "execute_prompt": "activityTrigger",
    "sweep_failed_jobs": "timerTrigger",
    "repair_stalled_jobs": "timerTrigger",
    "deliver_callback": "activityTrigger",
    "flow_control": "entityTrigger",
    "grant_flow_slots": "activityTrigger",
    "note_callback_abandoned": "activityTrigger",
}


def bindings_of(name: str) -> list[dict[str, Any]]:
    function = next(f for f in FUNCTIONS if f.get_function_name() == name)
    bindings: list[dict[str, Any]] = json.loads(function.get_function_json())["bindings"]
    return bindings


def test_exactly_the_expected_functions() -> None:
    names = sorted(str(function.get_function_name()) for function in FUNCTIONS)
    assert names == sorted([*HTTP_ROUTES, *DURABLE_TRIGGERS])


@pytest.mark.parametrize("name", sorted(HTTP_ROUTES))
def test_http_routes(name: str) -> None:
    route, methods, auth_level = HTTP_ROUTES[name]
    bindings = bindings_of(name)
    trigger = next(b for b in bindings if b["type"] == "httpTrigger")
    assert trigger["route"] == route
    assert [method.upper() for method in trigger["methods"]] == methods
    assert trigger["authLevel"].upper() == auth_level
    expected = {"httpTrigger", "http"} | (
        {"durableClient"} if name not in NO_DURABLE_CLIENT else set()
    )
    assert {b["type"] for b in bindings} == expected


def test_only_health_the_api_description_and_the_dashboard_are_anonymous() -> None:
    anonymous = [name for name, (_, _, level) in HTTP_ROUTES.items() if level == "ANONYMOUS"]
    assert {name for name in anonymous if not name.startswith("dashboard_")} == {
        "healthz",
        *REFERENCE_ROUTES,
    }
    # Every anonymous dashboard route is under /api/dashboard/, where the session cookie goes.
    assert all(
        HTTP_ROUTES[name][0].startswith("dashboard/")
        for name in anonymous
        if name.startswith("dashboard_")
    )


def test_no_route_starts_with_a_prefix_the_functions_host_reserves() -> None:
    # The host answers /admin/... itself and refuses function routes that begin with "admin".
    for route, _, _ in HTTP_ROUTES.values():
        assert not route.lower().startswith(("admin", "runtime"))


def test_no_two_http_functions_share_a_route_and_method() -> None:
    pairs = [(route, method) for route, methods, _ in HTTP_ROUTES.values() for method in methods]
    assert len(pairs) == len(set(pairs))


@pytest.mark.parametrize("name", sorted(DURABLE_TRIGGERS))
def test_durable_triggers(name: str) -> None:
    types = [b["type"] for b in bindings_of(name)]
    assert DURABLE_TRIGGERS[name] in types


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.get_function_name())
def test_user_function_parameters_match_binding_names(function: Any) -> None:
    user_function = function.get_user_function()
    # The durable client middleware keeps the user's signature through functools.wraps.
    parameters = set(inspect.signature(user_function).parameters)
    inputs = {
        b["name"]
        for b in json.loads(function.get_function_json())["bindings"]
        if b["direction"].upper() == "IN"
    }
    assert parameters == inputs
