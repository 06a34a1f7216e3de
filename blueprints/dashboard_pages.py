"""The dashboard's pages and actions: each reads through the same code as the JSON API.

Pages are GETs that change nothing; actions are POSTed forms (same origin, CSRF token)
that call the API's own handlers and answer 303 to the page that shows the result.
"""

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import azure.durable_functions as df
import azure.functions as func

from api.problems import not_found, problem
from blueprints import dependencies
from blueprints.dashboard_web import (
    BASE,
    checked_form,
    current_session,
    is_https,
    redirect,
    render,
    session_key,
    session_lifetime,
)
from blueprints.instances import backend_unavailable, checked_id
from blueprints.unreadable import key_check, read_job, shown
from dashboard.attempts import AttemptRow, attempt_row, attempts_of, parse_time
from scheduling.job_record import LIVE_STATES, JobRecord
from storage.job_rows import UnreadableRow
from storage.job_store import ContinuationToken, DueRange

LOG_ENTRIES_SHOWN = 200
# The recurring page walks the due index for recurring jobs: at most this many rows a page.
RECURRING_PAGE = 50
RECURRING_SCAN_ROWS = 1000
DONE = {"pause": "paused", "resume": "resumed", "replay": "replayed"}
NOTICES = {
    "deleted": "The job was deleted.",
    "paused": "The job was paused.",
    "resumed": "The job was resumed.",
    "replayed": "The job was replayed: its new run is due now.",
    "cleared": "The failed list was cleared.",
    "partly-cleared": "Part of the failed list was cleared; clear again for the rest.",
}


async def sign_in(request: func.HttpRequest) -> func.HttpResponse:
    """The host has checked the admin key (this route's auth level): start a session."""
    from dashboard.sessions import cookie_header, new_session

    lifetime = session_lifetime()
    _, token = new_session(session_key(), dependencies.current().clock(), lifetime)
    # The 303 takes the key out of the address bar at once; no page is served at its URL.
    return redirect(
        f"{BASE}/jobs", {"Set-Cookie": cookie_header(token, lifetime, is_https(request))}
    )


async def sign_out(request: func.HttpRequest) -> func.HttpResponse:
    from dashboard.sessions import clearing_cookie_header

    checked_form(request)
    return redirect(f"{BASE}/signed-out", {"Set-Cookie": clearing_cookie_header(is_https(request))})


def _csrf(request: func.HttpRequest) -> str:
    return current_session(request).csrf_token(session_key())


def _notice(request: func.HttpRequest) -> str | None:
    return NOTICES.get(request.params.get("done") or "")


async def pending(
    request: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    from blueprints.jobs import label_filters, live_page
    from delivery.prompts import PROMPT_TYPES

    page = await live_page(request)
    state = request.params.get("state") or ""
    prompt_type = request.params.get("prompt_type") or ""
    # The form has one label field; a URL may repeat `label` (all must match), as the API's.
    labels = [f"{key}={value}" for key, value in label_filters(request)]
    filters = {"state": state, "prompt_type": prompt_type, "labels": labels}
    next_url = None
    if page.next_cursor:
        # The same filters and page size (all already checked by live_page) on the next page.
        limit = request.params.get("limit") or ""
        kept = [
            (name, value)
            for name, value in (("state", state), ("prompt_type", prompt_type), ("limit", limit))
            if value
        ]
        kept += [("label", label) for label in labels]
        next_url = f"{BASE}/jobs?" + urlencode([*kept, ("cursor", page.next_cursor)])
    return render(
        "pending.html",
        csrf=_csrf(request),
        notice=_notice(request),
        jobs=page.records,
        states=sorted(LIVE_STATES),
        prompt_types=sorted(PROMPT_TYPES),
        filters=filters,
        next_url=next_url,
        first_page=not request.params.get("cursor"),
        now=dependencies.current().clock(),
        active="jobs",
    )


async def recurring(
    request: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Recurring jobs by next fire time: the due index walked page by page, bounded."""
    from blueprints.jobs import read_live
    from storage.paging import InvalidCursor, decode_cursor, encode_cursor

    scope_key = "dashboard/recurring"
    token: ContinuationToken | None = None
    if cursor := request.params.get("cursor"):
        try:
            token = decode_cursor(cursor, scope_key)
        except InvalidCursor as error:
            raise problem(400, "invalid-cursor", "Invalid cursor", str(error)) from None
    found: list[JobRecord] = []
    scanned = 0
    while True:
        records, token, read = await read_live(DueRange(), None, 100, token)
        scanned += read
        found += [
            record
            for record in records
            if isinstance(record, JobRecord) and record.recurrence is not None
        ]
        if token is None or len(found) >= RECURRING_PAGE or scanned >= RECURRING_SCAN_ROWS:
            break
    next_url = (
        f"{BASE}/recurring?" + urlencode({"cursor": encode_cursor(token, scope_key)})
        if token
        else None
    )
    return render(
        "recurring.html",
        csrf=_csrf(request),
        notice=_notice(request),
        jobs=found,
        next_url=next_url,
        now=dependencies.current().clock(),
        active="recurring",
    )


async def timeline(
    request: func.HttpRequest, client: df.DurableOrchestrationClient, transaction_id: str
) -> func.HttpResponse:
    """One job: what it is, each attempt with its lateness, and its log."""
    from blueprints.job_logs import log_page

    checked_id(transaction_id)
    deps = dependencies.current()
    settings = deps.settings()
    store = deps.job_store(settings)
    try:
        found = await asyncio.to_thread(read_job, store, transaction_id)
    except Exception:
        raise backend_unavailable("answer the job read") from None
    entries, more = await log_page(transaction_id, LOG_ENTRIES_SHOWN, None)
    job = found if isinstance(found, UnreadableRow) else found.record if found else None
    if job is None and not entries:
        raise not_found(f"no job with transaction id {transaction_id}")
    if isinstance(job, JobRecord):
        job = shown(job, key_check(deps, settings))
    return render(
        "timeline.html",
        csrf=_csrf(request),
        notice=_notice(request),
        transaction_id=transaction_id,
        job=job,
        attempts=attempts_of(job) if isinstance(job, JobRecord) else [],
        entries=entries,
        more_entries=more is not None,
        now=deps.clock(),
        active="",
    )


async def act(
    request: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    transaction_id: str,
    action: str,
) -> func.HttpResponse:
    """Delete, pause, resume or replay a job through the API's own handlers."""
    from blueprints import changing, removing

    checked_form(request)
    checked_id(transaction_id)
    if action == "delete":
        await removing.delete_job(client, request, transaction_id)
        return redirect(f"{BASE}/jobs?done=deleted")
    if action == "pause":
        await changing.pause_job(client, request, transaction_id)
    elif action == "resume":
        await changing.resume_job(client, request, transaction_id)
    elif action == "replay":
        await changing.replay_job(client, request, transaction_id)
    else:
        raise not_found(f"no dashboard action {action!r}")
    return redirect(f"{BASE}/jobs/{transaction_id}?done={DONE[action]}")


async def charts(
    request: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Attempts fired per minute over the last day, and how late they fired."""
    from dashboard import charts as drawing

    deps = dependencies.current()
    store = deps.job_store(deps.settings())
    now = deps.clock()
    limit = deps.settings().dashboard_chart_records
    try:
        records, sampled = await asyncio.to_thread(
            store.updated_since, now - timedelta(days=1), limit
        )
    except Exception:
        raise backend_unavailable("answer the read of recent jobs") from None
    since = now - timedelta(days=1)
    fired = [
        drawing.FiredAttempt(row.fired_at, row.lateness_ms)
        for record in records
        for row in attempts_of(record)
        if row.fired_at is not None and row.fired_at > since
    ]
    late = drawing.lateness_histogram(fired)
    minutes = drawing.fitted_minutes(fired, now)
    per_minute = None
    if minutes is not None:
        per_minute = drawing.per_minute_chart(drawing.fired_per_minute(fired, now, minutes), now)
    return render(
        "charts.html",
        csrf=_csrf(request),
        notice=None,
        per_minute=per_minute,
        window_hours=(minutes or 0) // 60,
        window_start=drawing.first_minute(now, minutes or 1),
        lateness=drawing.lateness_chart(late),
        lateness_labels=drawing.lateness_labels(),
        percentiles=drawing.percentiles(fired),
        records_read=len(records),
        sampled=sampled,
        limit=limit,
        now=now,
        active="charts",
    )


async def signed_out(request: func.HttpRequest) -> func.HttpResponse:
    return render("signed_out.html", csrf="", notice=None, active="")


@dataclass(frozen=True)
class FailedRow:
    """A failed job as the failed page shows it (from the failed list's job views)."""

    transaction_id: str
    labels: dict[str, str]
    prompt_type: str | None
    failed_at: datetime | None
    destination: str | None
    attempts: list[AttemptRow]
    recurring: bool
    # Why it cannot be read, when its record cannot (then it has no attempts to show).
    unreadable: str | None = None

    @property
    def last(self) -> AttemptRow | None:
        return self.attempts[-1] if self.attempts else None


async def failed(
    request: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The dead letters, by failure time, through the failed list's own handler."""
    from blueprints import dead_letters
    from delivery.prompts import PROMPT_TYPES

    listing = json.loads((await dead_letters.list_failed(client, request)).get_body())
    rows = [
        FailedRow(
            transaction_id=view["transaction_id"],
            labels=view.get("labels") or {},
            prompt_type=view.get("prompt_type"),
            failed_at=parse_time(view.get("failed_at")),
            destination=view.get("destination"),
            attempts=[attempt_row(summary) for summary in view.get("attempt_history") or []],
            recurring=view.get("recurrence") is not None,
            unreadable=view.get("why") if view.get("unreadable") else None,
        )
        for view in listing["jobs"]
    ]
    prompt_type = request.params.get("prompt_type") or ""
    next_url = None
    if listing.get("next_cursor"):
        kept = {"prompt_type": prompt_type} if prompt_type else {}
        next_url = f"{BASE}/failed?" + urlencode({**kept, "cursor": listing["next_cursor"]})
    return render(
        "failed.html",
        csrf=_csrf(request),
        notice=_notice(request),
        jobs=rows,
        prompt_types=sorted(PROMPT_TYPES),
        prompt_type=prompt_type,
        next_url=next_url,
        active="failed",
    )


async def clear_failed(
    request: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Empty the failed list through DELETE /api/failed's handler (bounded per call)."""
    from blueprints import dead_letters

    checked_form(request)
    answer = json.loads((await dead_letters.clear_failed(client, request)).get_body())
    done = "cleared" if answer.get("complete", True) else "partly-cleared"
    return redirect(f"{BASE}/failed?done={done}")
