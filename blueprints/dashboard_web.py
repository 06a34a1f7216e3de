"""The dashboard's web plumbing: templates, security headers, the session check, forms.

Every page is rendered on the server by Jinja2 with autoescaping on for everything, so all
that a job carries (ids, destinations, log messages, errors) reaches the page as text. No
script runs on any page; the Content-Security-Policy says so to the browser as well.
"""

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from blueprints import dependencies

if TYPE_CHECKING:
    from jinja2 import Environment

    from api.problems import ProblemError
    from dashboard.sessions import Session

BASE = "/api/dashboard"
TEMPLATES = Path(__file__).with_name("dashboard_templates")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # No dashboard URL goes to another site (and the one URL with the key is a redirect,
    # never a page). Not "no-referrer": Chromium then sends `Origin: null` on our own forms.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 4096
log = logging.getLogger(__name__)


@functools.cache
def environment() -> "Environment":
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from dashboard.jobs import format_duration, overdue
    from dashboard.naming import job_name
    from dashboard.timeline import entry_fields, format_ms

    env.filters["utc"] = format_time
    env.filters["ms"] = format_ms
    env.filters["duration"] = format_duration
    env.globals["entry_fields"] = entry_fields
    env.globals["overdue"] = overdue
    env.globals["name_of"] = lambda job: job_name(
        job.transaction_id, job.prompt_type, job.destination, job.labels
    )
    env.tests["unreadable"] = _is_unreadable
    return env


def _is_unreadable(job: object) -> bool:
    """A job shown as what could be read of it (its record, or its payload, cannot be)."""
    from storage.job_rows import UnreadableRow

    return isinstance(job, UnreadableRow)


def format_time(moment: datetime | str | None) -> str:
    """A time (or RFC 3339 text, as in a recurring job's `last_run`) as the pages show it."""
    from dashboard.attempts import parse_time

    parsed = parse_time(moment)
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC") if parsed else "—"


def html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        body,
        status_code=status,
        mimetype="text/html",
        charset="utf-8",
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def render(template: str, status: int = 200, **context: Any) -> func.HttpResponse:
    return html(environment().get_template(template).render(base=BASE, **context), status)


def redirect(location: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """303 See Other: after a form's POST the browser GETs the page (no re-POST on reload)."""
    return func.HttpResponse(
        status_code=303, headers={**SECURITY_HEADERS, "Location": location, **(headers or {})}
    )


def session_key() -> bytes:
    from api.problems import problem
    from dashboard.sessions import session_key as derive
    from scheduling.idempotency import FingerprintKeyMissing, fingerprint_key

    settings = dependencies.current().settings()
    try:
        return derive(fingerprint_key(settings.request_fingerprint_key.get_secret_value()))
    except FingerprintKeyMissing as error:
        log.error("dashboard sign-in refused: %s", error)
        raise problem(
            503,
            "not-configured",
            "Not configured",
            "the dashboard's sessions are not configured on this app (REQUEST_FINGERPRINT_KEY)",
        ) from None


def session_lifetime() -> timedelta:
    return timedelta(minutes=dependencies.current().settings().dashboard_session_minutes)


def is_https(request: func.HttpRequest) -> bool:
    url: str = request.url
    return urlsplit(url).scheme == "https"


def error_page(error: "ProblemError") -> func.HttpResponse:
    found = error.problem
    return render(
        "error.html",
        status=found.status,
        title=found.title,
        detail=found.detail,
        signed_in=found.status != 401,
        csrf="",
        notice=None,
        active="",
    )


async def guarded(
    request: func.HttpRequest,
    page: Callable[[], Awaitable[func.HttpResponse]],
    *,
    signed_in: bool = True,
) -> func.HttpResponse:
    """Answer with `page` (only for a signed-in browser, unless told otherwise); every error
    becomes a page with its status."""
    from api.problems import ProblemError, problem

    try:
        if signed_in:
            current_session(request)
        return await page()
    except ProblemError as error:
        return error_page(error)
    except Exception:
        log.exception("unhandled error in a dashboard page")
        return error_page(
            problem(500, "internal", "Internal error", "the page failed; see the app's logs")
        )


def current_session(request: func.HttpRequest) -> "Session":
    """The request's session, or a 401 that says how to sign in."""
    from api.problems import problem
    from dashboard.sessions import cookie_value, read_session

    token = cookie_value(request.headers.get("cookie"))
    session = read_session(session_key(), token, dependencies.current().clock())
    if session is None:
        raise problem(
            401,
            "dashboard-sign-in",
            "Sign in to the dashboard",
            f"open {BASE}?code=<the app's admin (master) key> to sign in; a session lasts "
            f"{dependencies.current().settings().dashboard_session_minutes} minutes",
        )
    return session


def checked_form(request: func.HttpRequest) -> dict[str, str]:
    """A POSTed form from our own pages: same origin, this session's CSRF token; else 403."""
    from api.problems import problem
    from dashboard.sessions import csrf_matches

    refused = problem(
        403, "dashboard-forbidden", "Refused", "the form did not come from this dashboard"
    )
    # Browsers send these on every POST; a request from another site says so in them.
    origin = request.headers.get("origin")
    if origin is not None and origin != _origin(request):
        raise refused
    if request.headers.get("sec-fetch-site") not in (None, "same-origin"):
        raise refused
    body = request.get_body()
    if len(body) > MAX_FORM_BYTES:
        raise refused
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=8, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise refused from None
    form = {name: values[0] for name, values in fields.items()}
    if not csrf_matches(session_key(), current_session(request), form.get("csrf")):
        raise refused
    return form


def _origin(request: func.HttpRequest) -> str:
    parts = urlsplit(request.url)
    return f"{parts.scheme}://{parts.netloc}"


@functools.cache
def _stylesheet_text() -> str:
    return (TEMPLATES / "dashboard.css").read_text(encoding="utf-8")


def stylesheet() -> func.HttpResponse:
    return func.HttpResponse(
        _stylesheet_text(),
        mimetype="text/css",
        charset="utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"},
    )
