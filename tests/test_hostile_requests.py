"""Hostile requests, route family by route family, over real HTTP against the app on the
local durable host's front end (keys enforced), with live, recurring, paused, failed and
unreadable jobs in the store: never a 5xx, and every refusal in the one problem format (or
the host's own answer: 401 without a body, a 403 of its own to a browser's cross-site
request, an HTML page for the dashboard).

The families are the review's (create, status and logs, listing, PATCH, pause and resume,
delete and wipe, replay) and the ones it did not cover: the failed list and its clear, the
cron preview, the dashboard's pages and forms, and the batch create. Each family gets
HOSTILE_REQUESTS_PER_FAMILY requests (Hypothesis: generated, and shrunk to the smallest
failing request); a deep run: SCHEDULER_HOSTILE_REQUESTS=10000 (docs/api-reference.md).
"""

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from api.problems import Problem
from dashboard.sessions import COOKIE_NAME
from local_durable_host.app_server import AppServer
from scheduling.timing import format_utc
from tests.support.poison import POISONS
from tests.support.scheduler import Scheduler
from tests.support.served_app import TEST_KEYS, served_app

HOSTILE_REQUESTS_PER_FAMILY = int(os.environ.get("SCHEDULER_HOSTILE_REQUESTS", "12"))
MASTER = {"x-functions-key": TEST_KEYS.master_key}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@dataclass
class Site:
    """The served app, its jobs of every kind, and a signed-in dashboard session."""

    server: AppServer
    http: httpx.Client
    ids: list[str]
    session: str
    csrf: str


def seeded(scheduler: Scheduler, httpserver: HTTPServer, http: httpx.Client) -> list[str]:
    """A job in each state a route treats differently, two of them unreadable."""
    httpserver.expect_request("/broken").respond_with_data("no", status=400)
    now = scheduler.now()
    due = now + timedelta(minutes=5)
    later = format_utc(now + timedelta(hours=2))

    def create(message: str, **when: str) -> str:
        body = {"prompt_type": "log.append", "payload": {"message": message}, **when}
        reply = http.post("/api/schedule", json=body, headers=MASTER)
        assert reply.status_code == 202, reply.text
        return str(reply.json()["transaction_id"])

    failing = {"url": httpserver.url_for("/broken")}
    reply = http.post(
        "/api/schedule",
        json={"exec_at": format_utc(due), "prompt_type": "http.call", "payload": failing},
        headers=MASTER,
    )
    failed = str(reply.json()["transaction_id"])
    scheduler.host.advance_to(due + timedelta(seconds=30))
    pending = create("m", exec_at=later)
    recurring = create("tick", cron="0 9 * * *")
    paused = create("p", cron="0 10 * * *")
    assert http.post(f"/api/schedule/{paused}/pause", headers=MASTER).status_code == 200
    corrupted = create("c", exec_at=later)
    POISONS["corrupted"](scheduler, corrupted)
    removed_key = create("r", exec_at=later)
    POISONS["removed-key"](scheduler, removed_key)
    return [failed, pending, recurring, paused, corrupted, removed_key]


@pytest.fixture
def site(scheduler: Scheduler, httpserver: HTTPServer) -> Iterator[Site]:
    with (
        served_app(scheduler) as server,
        httpx.Client(base_url=server.base_url, timeout=60, trust_env=False) as http,
    ):
        ids = seeded(scheduler, httpserver, http)
        signed_in = http.get("/api/dashboard", headers=MASTER)
        assert signed_in.status_code == 303, signed_in.text
        session = signed_in.cookies[COOKIE_NAME]
        http.cookies.clear()
        page = http.get("/api/dashboard/jobs", headers=cookie_header({COOKIE_NAME: session}))
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None, page.text
        http.cookies.clear()
        yield Site(server, http, ids, session, found.group(1))


# -- hostile values ------------------------------------------------------------------------

_SPECIAL_TEXT = [
    "",
    " ",
    "\x00",
    "\n",
    "\r\n",
    "\ud800",
    "é",
    "💥",
    "%00",
    "%2F..%2F",
    "../../etc/passwd",
    "null",
    "true",
    "-1",
    "0",
    "1e400",
    "9" * 40,
    "NaN",
    "Infinity",
    "<script>x</script>",
    "' OR 1=1 --",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "*",
    "* * * * *",
    "0 9 * * 1-5",
    "60 * * * *",
    "*/0 * * * *",
    "5-5 * * * *",
    "@reboot",
    "Europe/Paris",
    "Mars/Olympus",
    "../../zoneinfo/UTC",
    "2026-12-01T09:00:00Z",
    "2026-12-01T09:00:00",
    "2026-02-30T09:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+00:00",
    "pending",
    "failed",
    "http.call",
    "log.append",
    "a" * 5000,
    "earlier",
    "later",
    "raise",
    "skip",
    UNKNOWN_ID,
]
# Text a URL or a form can carry (a lone surrogate has no UTF-8: JSON bodies carry it).
_URL_SAFE = st.characters(codec="utf-8")
texts = st.one_of(st.sampled_from(_SPECIAL_TEXT), st.text(max_size=60))
url_texts = st.one_of(
    st.sampled_from([t for t in _SPECIAL_TEXT if "\ud800" not in t]),
    st.text(alphabet=_URL_SAFE, max_size=60),
)
# Header values: visible ASCII and spaces (anything else never leaves an HTTP client).
header_texts = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80
).map(str.strip)
scalars = st.one_of(
    texts,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
_VALID_CREATE = {
    "exec_at": "2026-12-01T10:00:00Z",
    "prompt_type": "log.append",
    "payload": {"message": "m"},
}


@st.composite
def create_bodies(draw: st.DrawFn) -> Any:
    """A create body: a valid one (jobs do get created), a valid one with one field
    replaced, or anything at all."""
    if draw(st.integers(0, 3)) == 0:
        return dict(_VALID_CREATE)
    if draw(st.booleans()):
        body: dict[str, Any] = dict(_VALID_CREATE)
        field = draw(
            st.sampled_from(
                [
                    "exec_at",
                    "exec_local",
                    "timezone",
                    "cron",
                    "prompt_type",
                    "payload",
                    "retry",
                    "callbacks",
                    "flow_control",
                    "dst_gap",
                    "max_runs",
                    "labels",
                    "idempotency_key",
                    "extra",
                ]
            )
        )
        body[field] = draw(json_values)
        if draw(st.booleans()):
            body["payload"] = {
                "url": draw(
                    st.sampled_from(
                        [
                            "http://127.0.0.1:9/x",
                            "http://169.254.169.254/",
                            "ftp://x",
                            "http://[::1]:6379/",
                            "http://a@b/",
                            "http://2130706433/",
                            "x",
                        ]
                    )
                ),
                "headers": draw(st.dictionaries(texts, texts, max_size=3)),
                "method": draw(texts),
            }
            body["prompt_type"] = "http.call"
        return body
    return draw(json_values)


def encoded(body: Any) -> bytes:
    return json.dumps(body, allow_nan=False).encode("utf-8", "surrogatepass")


raw_bodies = st.one_of(
    create_bodies().map(encoded),
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b'{"a":1,"a":2}', b"[" * 2000, b'{"exec_at": 1e999}', b"\xff\xfe"]),
)
# Mostly JSON, so that most requests reach the app's own checks.
content_types = st.one_of(
    st.just("application/json"),
    st.sampled_from(
        [
            "application/json; charset=latin-1",
            "text/plain",
            "",
            "*/*",
            "application/x-www-form-urlencoded",
            "application/merge-patch+json",
        ]
    ),
)
QUERY_NAMES = [
    "label",
    "limit",
    "cursor",
    "state",
    "from",
    "to",
    "prompt_type",
    "history",
    "count",
    "cron",
    "timezone",
    "dst_gap",
    "dst_fold",
    "start_at",
    "end_at",
    "done",
    "code",
]
queries = st.dictionaries(st.one_of(st.sampled_from(QUERY_NAMES), url_texts), url_texts, max_size=5)


def job_ids(site: Site) -> st.SearchStrategy[str]:
    """One of the site's jobs, or an id that is not one (malformed, unknown, or any text
    percent-encoded: the host decodes route values)."""
    return st.one_of(
        st.sampled_from(site.ids),
        st.sampled_from([UNKNOWN_ID, UNKNOWN_ID.upper(), "x", "%20", "%0A", "A" * 300]),
        st.text(alphabet=_URL_SAFE, min_size=1, max_size=40).map(lambda t: quote(t, safe="")),
    )


@dataclass(frozen=True)
class HostileRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str]


# -- families ------------------------------------------------------------------------------

Family = Callable[[st.DrawFn, Site], HostileRequest]


def _api(draw: st.DrawFn, method: str, path: str, body: bytes = b"") -> HostileRequest:
    headers = dict(MASTER)
    if body or draw(st.integers(0, 3)) == 0:
        headers["Content-Type"] = draw(content_types)
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(header_texts)
    return HostileRequest(method, path, draw(queries), headers, body, {})


def create(draw: st.DrawFn, site: Site) -> HostileRequest:
    return _api(draw, "POST", "/api/schedule", draw(raw_bodies))


def batch(draw: st.DrawFn, site: Site) -> HostileRequest:
    """A batch: a list of create bodies (valid, altered, anything), or any body at all."""
    jobs = st.lists(create_bodies(), min_size=0, max_size=6).map(lambda j: {"jobs": j})
    body = draw(st.one_of(jobs.map(encoded), json_values.map(encoded), raw_bodies))
    return _api(draw, "POST", "/api/schedule/batch", body)


def status_and_logs(draw: st.DrawFn, site: Site) -> HostileRequest:
    job = draw(job_ids(site))
    path = draw(
        st.sampled_from(["/api/schedule/{}/status", "/api/schedule/{}/logs", "/api/status/{}"])
    )
    return _api(draw, "GET", path.format(job))


def listing(draw: st.DrawFn, site: Site) -> HostileRequest:
    return _api(draw, "GET", draw(st.sampled_from(["/api/schedule", "/api/schedules"])))


def patch(draw: st.DrawFn, site: Site) -> HostileRequest:
    valid = st.sampled_from(
        [{"exec_at": "2026-12-01T11:00:00Z"}, {"cron": "0 8 * * *"}, {"max_runs": 5}]
    )
    body = draw(st.one_of(valid.map(encoded), json_values.map(encoded), raw_bodies))
    return _api(draw, "PATCH", f"/api/schedule/{draw(job_ids(site))}", body)


def pause_and_resume(draw: st.DrawFn, site: Site) -> HostileRequest:
    action = draw(st.sampled_from(["pause", "resume"]))
    return _api(draw, "POST", f"/api/schedule/{draw(job_ids(site))}/{action}", draw(raw_bodies))


def delete_and_wipe(draw: st.DrawFn, site: Site) -> HostileRequest:
    if draw(st.integers(0, 9)) == 0:
        return _api(
            draw,
            draw(st.sampled_from(["DELETE", "POST"])),
            draw(st.sampled_from(["/api/schedule", "/api/wipe"])),
        )
    target = draw(st.sampled_from(["/api/schedule/{}", "/api/terminate/{}"]))
    method = "DELETE" if target.startswith("/api/schedule") else "POST"
    return _api(draw, method, target.format(draw(job_ids(site))))


def replay(draw: st.DrawFn, site: Site) -> HostileRequest:
    return _api(draw, "POST", f"/api/schedule/{draw(job_ids(site))}/replay", draw(raw_bodies))


def failed_list_and_clear(draw: st.DrawFn, site: Site) -> HostileRequest:
    method = draw(st.sampled_from(["GET", "GET", "GET", "DELETE"]))
    return _api(draw, method, "/api/failed")


def preview(draw: st.DrawFn, site: Site) -> HostileRequest:
    crons = st.sampled_from(["0 9 * * 1-5", "*/15 * * * *", "30 2 * * *", "0 0 29 2 *"])
    params = draw(
        st.fixed_dictionaries(
            {"cron": st.one_of(crons, url_texts)},
            optional={
                name: url_texts
                for name in ("timezone", "dst_gap", "dst_fold", "start_at", "end_at", "count")
            },
        )
    )
    return HostileRequest("GET", "/api/schedule/preview", params, dict(MASTER), b"", {})


def dashboard(draw: st.DrawFn, site: Site) -> HostileRequest:
    cookies = {COOKIE_NAME: draw(st.sampled_from([site.session] * 4 + ["v1.forged", ""]))}
    if draw(st.booleans()):
        page = draw(
            st.sampled_from(
                [
                    "/api/dashboard/jobs",
                    "/api/dashboard/recurring",
                    "/api/dashboard/failed",
                    "/api/dashboard/charts",
                    "/api/dashboard/jobs/{}",
                ]
            )
        )
        return HostileRequest(
            "GET", page.format(draw(job_ids(site))), draw(queries), {}, b"", cookies
        )
    action = draw(st.sampled_from(["delete", "pause", "resume", "replay", "launch", ""]))
    path = draw(
        st.sampled_from(
            [
                f"/api/dashboard/jobs/{{}}/{action}",
                "/api/dashboard/failed/clear",
                "/api/dashboard/sign-out",
            ]
        )
    )
    csrf = draw(st.sampled_from([site.csrf] * 3 + ["", "forged"]))
    fields = {"csrf": csrf, **draw(st.dictionaries(url_texts, url_texts, max_size=3))}
    body = draw(
        st.one_of(st.just(str(httpx.QueryParams(fields)).encode()), st.binary(max_size=100))
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    origin = draw(st.sampled_from([None, None, "own", "own", "http://attacker.example", "null"]))
    if origin == "own":
        headers["Origin"] = site.server.base_url
    elif origin is not None:
        headers["Origin"] = origin
    return HostileRequest("POST", path.format(draw(job_ids(site))), {}, headers, body, cookies)


FAMILIES: dict[str, Family] = {
    "create": create,
    "batch": batch,
    "status and logs": status_and_logs,
    "listing": listing,
    "PATCH": patch,
    "pause and resume": pause_and_resume,
    "delete and wipe": delete_and_wipe,
    "replay": replay,
    "failed list and clear": failed_list_and_clear,
    "preview": preview,
    "dashboard pages and forms": dashboard,
}


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return (
        {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
        if cookies
        else {}
    )


# -- the check -----------------------------------------------------------------------------

# The host's own answers, all before the app runs: a key missing (401), a route or method it
# has not (404, 405), its refusal of what a browser sent from another site (403), and
# its limits (a request line over 8 KiB: 414; headers over 32 KiB: 431).
HOST_ANSWERS = {401, 403, 404, 405, 414, 431}


def check(request: HostileRequest, reply: httpx.Response) -> None:
    where = f"{request.method} {request.path} {request.params} -> {reply.status_code}"
    assert reply.status_code < 500, f"{where}: {reply.text[:500]}"
    media = reply.headers.get("content-type", "").split(";")[0]
    if request.path.startswith("/api/dashboard"):
        assert reply.status_code == 303 or media in ("text/html", "text/plain", ""), where
        return
    if reply.status_code < 400:
        assert media == "application/json", where
        json.loads(reply.content)
        return
    if media == "application/problem+json":
        problem = Problem.model_validate_json(reply.content)
        assert problem.status == reply.status_code, where
        return
    assert reply.status_code in HOST_ANSWERS, f"{where}: {media} {reply.text[:300]}"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_hostile_requests_never_get_a_server_error(site: Site, family: str) -> None:
    make = FAMILIES[family]
    answered: Counter[int] = Counter()

    @hypothesis.settings(
        max_examples=HOSTILE_REQUESTS_PER_FAMILY,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(data=st.data())
    def one(data: st.DataObject) -> None:
        request = data.draw(st.composite(lambda draw: make(draw, site))())
        reply = site.http.request(
            request.method,
            request.path,
            params=request.params,
            headers={**request.headers, **cookie_header(request.cookies)},
            content=request.body,
        )
        check(request, reply)
        answered[reply.status_code] += 1

    one()
    print(f"{family}: {answered.total()} requests, by status {sorted(answered.items())}")
    # Hypothesis runs each example once more when it replays a failure; else exactly these.
    assert answered.total() >= HOSTILE_REQUESTS_PER_FAMILY, answered
