"""The public API of the running app, end to end over real HTTP and real time.

Every job here is scheduled when the module's first test asks for them, 65 s ahead
(MIN_LEAD_SECONDS is 60) but one due 90 s ahead, so the whole module waits for one firing
window: about 90 s plus the allowed lateness (conftest.py). The other modules that wait for
jobs a minute out schedule theirs at the same moment (conftest.py's `jobs_due_together`), so
the run waits out that window once. Early on, while every job is pending, the app's host is
killed with SIGKILL and started again (when the suite started it): the jobs must then all
fire, once. Tests run in file order; each one still waits for what it needs, so any one of
them can run alone. The wipe test at the end removes every pending job of the app it runs
against.
"""

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest

from delivery.prompts.http_call import TRANSACTION_HEADER
from scheduling.zone_data import TZDATA_VERSION
from tests.live.conftest import JobsDueTogether, LiveApp, Receiver, client_of, serving_receiver

pytestmark = pytest.mark.live

LEAD = timedelta(seconds=65)
LONG_LEAD = timedelta(seconds=90)
SURVIVORS = ("survivor-1", "survivor-2", "survivor-3")
LIVE_STATES = {"pending", "firing", "retrying"}
POLL_INTERVAL_SECONDS = 2.0
# Entity operations (register, unregister) are queued messages: give the listing this long.
LISTING_SETTLE_SECONDS = 30.0
# The receiver's clock and the host's are this machine's; allow for rounding only.
CLOCK_SLACK_SECONDS = 1.0
PROBLEM_JSON = "application/problem+json"

T = TypeVar("T")


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = POLL_INTERVAL_SECONDS,
) -> T:
    """Call `probe` until it returns something other than None, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class Scheduled:
    """A job this module scheduled, and what POST /api/schedule answered."""

    name: str
    transaction_id: str
    exec_at: datetime
    prompt_type: str
    payload: dict[str, Any]
    response: httpx.Response
    receiver_path: str | None = None


def schedule(
    api: httpx.Client, exec_at: datetime, prompt_type: str, payload: dict[str, Any]
) -> httpx.Response:
    return api.post(
        "/api/schedule",
        json={"exec_at": iso(exec_at), "prompt_type": prompt_type, "payload": payload},
    )


def accepted_id(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    transaction_id = response.json()["transaction_id"]
    assert isinstance(transaction_id, str)
    return transaction_id


def schedule_jobs(
    api: httpx.Client, stack: contextlib.ExitStack
) -> tuple[Receiver, dict[str, Scheduled]]:
    """A receiver, and jobs due 65 s from now (two http.call, one log.append, one to be
    deleted, three that outlive a kill of the host) and one http.call due 90 s from now."""
    receiver = stack.enter_context(serving_receiver())
    token = uuid.uuid4().hex
    plans: list[tuple[str, str, dict[str, Any], str | None]] = [
        (
            "text",
            "http.call",
            {
                "method": "POST",
                "url": receiver.url_for(f"/text-{token}"),
                "headers": {"X-Live-Test": token},
                "body": f"hello from the live suite {token}",
                "timeout_seconds": 10,
            },
            f"/text-{token}",
        ),
        (
            "json",
            "http.call",
            {
                "method": "PUT",
                "url": receiver.url_for(f"/json-{token}"),
                "headers": {"X-Live-Test": token},
                "json": {"token": token, "items": [1, 2, 3], "nested": {"ok": True}},
            },
            f"/json-{token}",
        ),
        (
            "log",
            "log.append",
            {
                "message": f"live suite log entry {token}",
                "level": "warning",
                "fields": {"token": token},
            },
            None,
        ),
        (
            "deleted",
            "http.call",
            {
                "method": "POST",
                "url": receiver.url_for(f"/deleted-{token}"),
                "body": "must not arrive",
            },
            f"/deleted-{token}",
        ),
        *[
            (
                name,
                "http.call",
                {"method": "POST", "url": receiver.url_for(f"/{name}-{token}"), "body": name},
                f"/{name}-{token}",
            )
            for name in (*SURVIVORS, "ninety")
        ],
    ]
    scheduled: dict[str, Scheduled] = {}
    for name, prompt_type, payload, path in plans:
        exec_at = datetime.now(UTC) + (LONG_LEAD if name == "ninety" else LEAD)
        response = schedule(api, exec_at, prompt_type, payload)
        scheduled[name] = Scheduled(
            name=name,
            transaction_id=accepted_id(response),
            exec_at=exec_at,
            prompt_type=prompt_type,
            payload=payload,
            response=response,
            receiver_path=path,
        )
    return receiver, scheduled


@pytest.fixture(scope="module")
def receiver(jobs_due_together: JobsDueTogether) -> Receiver:
    """The target of this module's http.call jobs."""
    receiver: Receiver = jobs_due_together.of(__name__)[0]
    return receiver


@pytest.fixture(scope="module")
def jobs(jobs_due_together: JobsDueTogether) -> dict[str, Scheduled]:
    jobs: dict[str, Scheduled] = jobs_due_together.of(__name__)[1]
    return jobs


def listed_jobs(api: httpx.Client) -> Iterator[dict[str, Any]]:
    """Every job of GET /api/schedule, following next_cursor (at most 100 pages)."""
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, str | int] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        response = api.get("/api/schedule", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        yield from page["jobs"]
        cursor = page.get("next_cursor")
        if not cursor:
            return
    pytest.fail("GET /api/schedule returned more than 100 pages")


def listing_of(api: httpx.Client, transaction_ids: set[str]) -> dict[str, dict[str, Any]]:
    return {
        job["transaction_id"]: job
        for job in listed_jobs(api)
        if job["transaction_id"] in transaction_ids
    }


def status_of(api: httpx.Client, transaction_id: str, **params: str) -> httpx.Response:
    return api.get(f"/api/schedule/{transaction_id}/status", params=params)


def log_entries(api: httpx.Client, transaction_id: str) -> list[dict[str, Any]]:
    """Every entry of the job's log, following next_cursor (at most 20 pages)."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, str | int] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        response = api.get(f"/api/schedule/{transaction_id}/logs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        entries.extend(page["entries"])
        cursor = page.get("next_cursor")
        if not cursor:
            return entries
    pytest.fail("the job log returned more than 20 pages")


def finished_status(api: httpx.Client, job: Scheduled, max_lateness: float) -> dict[str, Any]:
    """The job's status once it is terminal; fails when it is not by exec_at + max_lateness."""

    def terminal() -> dict[str, Any] | None:
        response = status_of(api, job.transaction_id)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return None if body["state"] in LIVE_STATES else body

    remaining = (job.exec_at - datetime.now(UTC)).total_seconds() + max_lateness
    return wait_for(
        f"job {job.name} ({job.transaction_id}) to finish", terminal, max(remaining, 1.0)
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(problem[member], str), problem
    assert problem["type"]
    assert problem["title"]
    return problem


def assert_fired_once(receiver: Receiver, job: Scheduled, max_lateness: float) -> Any:
    """The one request the job sent, which arrived no earlier than exec_at and not too late."""
    assert job.receiver_path is not None
    received = receiver.requests_to(job.receiver_path)
    assert len(received) == 1, f"{job.name}: expected one request, got {len(received)}"
    arrival = received[0].received_at
    due = job.exec_at.timestamp()
    assert arrival >= due - CLOCK_SLACK_SECONDS, f"{job.name} fired {due - arrival:.1f} s early"
    assert arrival <= due + max_lateness, f"{job.name} fired {arrival - due:.1f} s late"
    return received[0]


# --- health and acceptance ---------------------------------------------------------------


def test_healthz_reports_ok(api: httpx.Client) -> None:
    response = api.get("/api/healthz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def test_zones_come_from_the_pinned_tzdata(api: httpx.Client, admin_api: httpx.Client) -> None:
    # The local durable host runs with host zone files that put Vancouver in Tokyo's time
    # (local_host_process.py); the next 09:00 in Vancouver is still where tzdata has it.
    zone = ZoneInfo("America/Vancouver")
    now = datetime.now(UTC)
    wall = now.astimezone(zone).replace(hour=9, minute=0, second=0, microsecond=0)
    if wall <= now:
        wall = (wall.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    response = api.get(
        "/api/schedule/preview",
        params={"cron": "0 9 * * *", "timezone": "America/Vancouver", "count": "1"},
    )
    assert response.status_code == 200, response.text
    assert [parse_time(moment) for moment in response.json()["fire_times"]] == [
        wall.astimezone(UTC)
    ]
    details = admin_api.get("/api/healthz/details")
    assert details.json()["tzdata_version"] == TZDATA_VERSION


def test_schedule_answers_202_with_status_url(jobs: dict[str, Scheduled]) -> None:
    for job in jobs.values():
        body = job.response.json()
        assert body["transaction_id"] == job.transaction_id
        assert parse_time(body["exec_at"]) == job.exec_at
        assert body["status_url"].endswith(f"/api/schedule/{job.transaction_id}/status")
        assert job.response.headers["location"] == body["status_url"]


def test_pending_jobs_are_listed(api: httpx.Client, jobs: dict[str, Scheduled]) -> None:
    wanted = {job.transaction_id for job in jobs.values()}

    def all_listed() -> dict[str, dict[str, Any]] | None:
        listed = listing_of(api, wanted)
        return listed if set(listed) == wanted else None

    listed = wait_for("every scheduled job to be listed", all_listed, LISTING_SETTLE_SECONDS)
    for job in jobs.values():
        entry = listed[job.transaction_id]
        assert entry["prompt_type"] == job.prompt_type
        assert parse_time(entry["exec_at"]) == job.exec_at
        assert entry["state"] == "pending"


def test_status_and_log_before_firing(
    api: httpx.Client, jobs: dict[str, Scheduled], receiver: Receiver
) -> None:
    job = jobs["text"]
    response = status_of(api, job.transaction_id)
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["state"] == "pending"
    assert status["last_outcome"] is None
    assert status["accepted_at"]
    assert status["prompt_type"] == "http.call"
    # The payload is sealed in the job store: only its method and origin are shown.
    assert status["destination"].startswith("POST http://")
    assert "payload" not in status
    if datetime.now(UTC) < job.exec_at:
        assert receiver.requests_to(job.receiver_path or "") == []

    with_history = status_of(api, job.transaction_id, history="true")
    assert with_history.status_code == 200, with_history.text
    assert with_history.json()["orchestration"]["history"]

    kinds = [entry["kind"] for entry in log_entries(api, job.transaction_id)]
    assert "accepted" in kinds


# --- the host killed and started again while every job is pending ------------------------


@pytest.fixture(scope="module")
def restarted(live_app: LiveApp, jobs: dict[str, Scheduled]) -> LiveApp:
    """The host, killed (SIGKILL) and started again before any job was due."""
    host = live_app.local_host
    if host is None:
        pytest.skip(
            f"the app at {live_app.base_url} was started outside the suite: kill it by hand"
        )
    first_due = min(job.exec_at for job in jobs.values())
    if datetime.now(UTC) > first_due - timedelta(seconds=15):
        pytest.fail("the suite reached the restart too late: the jobs would no longer be pending")
    host.kill()
    host.start()
    return live_app


def test_killed_host_comes_back_with_every_job_pending(
    restarted: LiveApp, api: httpx.Client, jobs: dict[str, Scheduled]
) -> None:
    assert api.get("/api/healthz").status_code == 200
    for name in (*SURVIVORS, "ninety", "text"):
        response = status_of(api, jobs[name].transaction_id)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "pending", response.json()


# --- bad input ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BadRequest:
    content: bytes
    content_type: str
    status: int
    field: str | None = None  # the first element of errors[0].loc of a 422


def body_of(exec_at: str, prompt_type: str = "log.append", payload: Any = None) -> bytes:
    payload = {"message": "bad input probe"} if payload is None else payload
    return json.dumps({"exec_at": exec_at, "prompt_type": prompt_type, "payload": payload}).encode()


def in_an_hour() -> str:
    return iso(datetime.now(UTC) + timedelta(hours=1))


BAD_REQUESTS: dict[str, Callable[[], BadRequest]] = {
    "naive exec_at": lambda: BadRequest(
        body_of(iso((datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None))),
        "application/json",
        422,
        "exec_at",
    ),
    "exec_at too soon": lambda: BadRequest(
        body_of(iso(datetime.now(UTC) + timedelta(seconds=5))), "application/json", 422, "exec_at"
    ),
    "exec_at too far": lambda: BadRequest(
        body_of(iso(datetime.now(UTC) + timedelta(days=400))), "application/json", 422, "exec_at"
    ),
    "unknown prompt type": lambda: BadRequest(
        body_of(in_an_hour(), "shell.exec", {"command": "true"}),
        "application/json",
        422,
        "prompt_type",
    ),
    "http.call without url": lambda: BadRequest(
        body_of(in_an_hour(), "http.call", {"method": "POST"}), "application/json", 422, "payload"
    ),
    "metadata URL": lambda: BadRequest(
        body_of(
            in_an_hour(),
            "http.call",
            {"method": "GET", "url": "http://169.254.169.254/latest/meta-data/"},
        ),
        "application/json",
        422,
        "payload",
    ),
    "malformed JSON": lambda: BadRequest(
        b'{"exec_at": "2030-01-01T00:00:00Z", ', "application/json", 400
    ),
    "wrong content type": lambda: BadRequest(body_of(in_an_hour()), "text/plain", 415),
    "oversize body": lambda: BadRequest(
        body_of(in_an_hour(), payload={"message": "x" * (300 * 1024)}), "application/json", 413
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_request_is_answered_with_problem_details(api: httpx.Client, case: str) -> None:
    bad = BAD_REQUESTS[case]()
    response = api.post(
        "/api/schedule", content=bad.content, headers={"Content-Type": bad.content_type}
    )
    problem = assert_problem(response, bad.status)
    if bad.field is not None:
        assert problem["errors"], problem
        assert problem["errors"][0]["loc"][0] == bad.field, problem
        assert all(isinstance(error["msg"], str) and error["msg"] for error in problem["errors"])


def test_unknown_id_is_404(api: httpx.Client) -> None:
    unknown = str(uuid.uuid4())
    assert_problem(status_of(api, unknown), 404)
    assert_problem(api.get(f"/api/schedule/{unknown}/logs"), 404)
    assert_problem(api.delete(f"/api/schedule/{unknown}"), 404)


# --- delete, then the firing window --------------------------------------------------------


def test_deleted_job_is_gone_and_never_fires(
    api: httpx.Client, jobs: dict[str, Scheduled], receiver: Receiver, max_lateness: float
) -> None:
    job = jobs["deleted"]
    response = api.delete(f"/api/schedule/{job.transaction_id}")
    assert response.status_code == 200, response.text
    assert status_of(api, job.transaction_id).json()["state"] == "cancelled"
    assert_problem(api.delete(f"/api/schedule/{job.transaction_id}"), 404)
    assert job.transaction_id not in listing_of(api, {job.transaction_id})
    assert "cancelled" in [entry["kind"] for entry in log_entries(api, job.transaction_id)]

    # Past the latest moment it could have fired, it still has not, and is still gone.
    wait_until = job.exec_at.timestamp() + max_lateness
    while time.time() < wait_until:
        assert receiver.requests_to(job.receiver_path or "") == []
        time.sleep(min(POLL_INTERVAL_SECONDS, max(wait_until - time.time(), 0.0)))
    assert receiver.requests_to(job.receiver_path or "") == []
    assert status_of(api, job.transaction_id).json()["state"] == "cancelled"


def test_http_call_with_text_body_fires_once(
    api: httpx.Client, jobs: dict[str, Scheduled], receiver: Receiver, max_lateness: float
) -> None:
    job = jobs["text"]
    status = finished_status(api, job, max_lateness)
    assert status["state"] == "succeeded", status

    request = assert_fired_once(receiver, job, max_lateness)
    assert request.method == "POST"
    assert request.headers["x-live-test"] == job.payload["headers"]["X-Live-Test"]
    assert request.headers[TRANSACTION_HEADER.lower()] == job.transaction_id
    assert request.headers["content-type"].startswith("text/plain")
    assert request.body == job.payload["body"].encode()

    output = status["last_outcome"]
    assert output["ok"] is True, output
    assert output["status_code"] == 200, output
    fired_at = parse_time(status["fired_at"])
    assert fired_at >= job.exec_at - timedelta(seconds=CLOCK_SLACK_SECONDS)

    kinds = [entry["kind"] for entry in log_entries(api, job.transaction_id)]
    for kind in ("accepted", "fired", "outcome"):
        assert kind in kinds, kinds
    assert kinds.index("accepted") < kinds.index("fired") < kinds.index("outcome")

    # Done jobs leave the listing, and a late duplicate would show up by now.
    wait_for(
        "the fired job to leave the listing",
        lambda: True if not listing_of(api, {job.transaction_id}) else None,
        LISTING_SETTLE_SECONDS,
    )
    assert len(receiver.requests_to(job.receiver_path or "")) == 1


def test_http_call_with_json_body_fires_once(
    api: httpx.Client, jobs: dict[str, Scheduled], receiver: Receiver, max_lateness: float
) -> None:
    job = jobs["json"]
    status = finished_status(api, job, max_lateness)
    assert status["state"] == "succeeded", status

    request = assert_fired_once(receiver, job, max_lateness)
    assert request.method == "PUT"
    assert request.headers["content-type"].startswith("application/json")
    assert json.loads(request.body) == job.payload["json"]
    assert status["last_outcome"]["status_code"] == 200


def test_log_append_job_writes_its_entry(
    api: httpx.Client, jobs: dict[str, Scheduled], max_lateness: float
) -> None:
    job = jobs["log"]
    status = finished_status(api, job, max_lateness)
    assert status["state"] == "succeeded", status

    entries = log_entries(api, job.transaction_id)
    written = [entry for entry in entries if entry["kind"] == "log"]
    assert len(written) == 1, entries
    assert written[0]["message"] == job.payload["message"]
    assert written[0]["level"] == "warning"
    assert written[0]["fields"] == job.payload["fields"]
    assert {"accepted", "fired", "outcome"} <= {entry["kind"] for entry in entries}


def test_jobs_pending_across_a_kill_fire_once(
    restarted: LiveApp,
    api: httpx.Client,
    jobs: dict[str, Scheduled],
    receiver: Receiver,
    max_lateness: float,
) -> None:
    for name in SURVIVORS:
        job = jobs[name]
        status = finished_status(api, job, max_lateness)
        assert status["state"] == "succeeded", status
        assert status["attempts"] == 1, status
        assert assert_fired_once(receiver, job, max_lateness).body == name.encode()


def test_job_due_90_s_after_creation_fires_within_its_lateness_bound(
    api: httpx.Client, jobs: dict[str, Scheduled], receiver: Receiver, max_lateness: float
) -> None:
    job = jobs["ninety"]
    status = finished_status(api, job, max_lateness)
    assert status["state"] == "succeeded", status
    request = assert_fired_once(receiver, job, max_lateness)
    lateness = request.received_at - job.exec_at.timestamp()
    print(f"the 90 s job fired {lateness:.2f} s after its exec_at (bound {max_lateness} s)")


def test_keys_are_checked(live_app: LiveApp) -> None:
    if live_app.local_host is None and not live_app.function_key:
        pytest.skip("the app under test was given no keys (`func start` does not check them)")
    with client_of(live_app.base_url, "") as anonymous:
        assert anonymous.get("/api/healthz").status_code == 200
        assert anonymous.get("/api/schedule").status_code == 401
    with client_of(live_app.base_url, live_app.function_key) as function_only:
        assert function_only.get("/api/schedule").status_code == 200
        assert function_only.get("/api/healthz/details").status_code == 401
    with client_of(live_app.base_url, live_app.admin_key) as admin:
        assert admin.get("/api/healthz/details").status_code == 200


# --- wipe (last: it removes every pending job of the app) ---------------------------------


def nothing_to_fire_before(api: httpx.Client, moment: datetime) -> bool:
    """No job due before `moment` is still to fire (pending, firing or retrying)."""
    for state in ("pending", "firing", "retrying"):
        cursor = None
        while True:  # a page may come back empty with a cursor: only the last one says
            params = {"state": state, "to": moment.isoformat(), "limit": 100}
            page = api.get(
                "/api/schedule", params={**params, **({"cursor": cursor} if cursor else {})}
            )
            page.raise_for_status()
            if page.json()["jobs"]:
                return False
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
    return True


def test_wipe_cancels_every_pending_job(
    admin_api: httpx.Client, api: httpx.Client, max_lateness: float
) -> None:
    # The other live modules' jobs were scheduled with this module's: the wipe would cancel
    # those still to fire, so it waits for them first.
    wait_for(
        "the jobs of the other live modules to be done",
        lambda: True if nothing_to_fire_before(api, datetime.now(UTC)) else None,
        max_lateness + 60,
    )
    soon = accepted_id(
        schedule(
            api, datetime.now(UTC) + timedelta(minutes=10), "log.append", {"message": "wipe me"}
        )
    )
    later = accepted_id(
        schedule(
            api, datetime.now(UTC) + timedelta(days=30), "log.append", {"message": "wipe me too"}
        )
    )
    wait_for(
        "both jobs to be listed",
        lambda: True if len(listing_of(api, {soon, later})) == 2 else None,
        LISTING_SETTLE_SECONDS,
    )

    response = admin_api.post("/api/wipe")
    assert response.status_code == 200, response.text
    counts = response.json()
    assert counts["cancelled"] >= 2, counts
    assert counts["complete"] is True, counts

    for transaction_id in (soon, later):
        assert status_of(api, transaction_id).json()["state"] == "cancelled"
        assert "wiped" in [entry["kind"] for entry in log_entries(api, transaction_id)]
    wait_for(
        "the listing to drop the wiped jobs",
        lambda: True if not listing_of(api, {soon, later}) else None,
        LISTING_SETTLE_SECONDS,
    )
