"""DELETE /api/schedule with a filter: the jobs it names cancelled by the delete's swap, a
bounded number per call with a cursor to go on; a firing job reported, never cut off."""

from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from blueprints import removing
from scheduling.timing import format_utc
from tests.support.app_client import Reply
from tests.support.scheduler import START, Scheduler
from tests.test_http_api import assert_problem
from tests.test_lifecycle import call_route


def job(
    minutes: int = 60, labels: dict[str, str] | None = None, prompt_type: str = "log.append"
) -> dict[str, Any]:
    payload: dict[str, Any] = (
        {"message": "m"} if prompt_type == "log.append" else {"url": "http://127.0.0.1:9/hook"}
    )
    body: dict[str, Any] = {
        "exec_at": format_utc(START + timedelta(minutes=minutes)),
        "prompt_type": prompt_type,
        "payload": payload,
    }
    if labels is not None:
        body["labels"] = labels
    return body


async def created(scheduler: Scheduler, jobs: list[dict[str, Any]]) -> list[str]:
    outcome = (await scheduler.api.post("/api/schedule/batch", {"jobs": jobs})).json()
    assert outcome["created"] == len(jobs), outcome
    return [result["job"]["transaction_id"] for result in outcome["results"]]


async def cancel_all(scheduler: Scheduler, query: str) -> tuple[int, list[str], int]:
    """Send the filtered delete until it says complete: cancelled, firing, calls."""
    cancelled, firing, calls, cursor = 0, [], 0, ""
    while True:
        reply = await scheduler.api.delete(f"/api/schedule?{query}{cursor}")
        assert reply.status == 200, reply.body
        body = reply.json()
        calls += 1
        cancelled += body["cancelled"]
        firing += body["firing"]
        if body["complete"]:
            assert body["next_cursor"] is None
            return cancelled, firing, calls
        cursor = f"&cursor={body['next_cursor']}"


async def states(scheduler: Scheduler, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for transaction_id in ids:
        stored = scheduler.job_store.get(transaction_id)
        assert stored is not None
        found.add(stored.record.state)
    return found


async def test_a_thousand_labelled_jobs_are_cancelled_and_none_fires_while_others_stay(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 300 rows a call: the thousand take four calls, each going on from the last's cursor.
    monkeypatch.setattr(removing, "CANCEL_MAX_JOBS", 300)
    labelled = await created(scheduler, [job(60 + n % 7, {"tenant": "gone"}) for n in range(1000)])
    unlabelled = await created(scheduler, [job(60 + n % 7) for n in range(100)])
    scheduler.host.run()

    cancelled, firing, calls = await cancel_all(scheduler, "label=tenant=gone")
    assert (cancelled, firing, calls) == (1000, [], 4)
    assert (await scheduler.api.get("/api/schedule?label=tenant=gone")).json()["jobs"] == []

    scheduler.host.advance_to(START + timedelta(minutes=70))
    assert await states(scheduler, labelled) == {"cancelled"}
    assert await states(scheduler, unlabelled) == {"succeeded"}
    for transaction_id in labelled[:20]:
        stored = scheduler.job_store.get(transaction_id)
        assert stored is not None
        assert stored.record.attempts == 0
        log = (await scheduler.api.get(f"/api/schedule/{transaction_id}/logs")).json()
        assert [entry["kind"] for entry in log["entries"]] == ["accepted", "cancelled"]
        assert "filtered delete" in log["entries"][-1]["message"]
    # The label index holds none of them any more.
    assert scheduler.job_store.label_page(("tenant", "gone"), None, 10, None)[0] == []


async def test_the_filter_takes_prompt_type_time_range_and_all_labels(
    scheduler: Scheduler,
) -> None:
    ids = await created(
        scheduler,
        [
            job(60, {"tenant": "a", "tier": "gold"}),
            job(60, {"tenant": "a"}),
            job(90, {"tenant": "a", "tier": "gold"}),
            job(60, {"tenant": "a", "tier": "gold"}, prompt_type="http.call"),
            job(120),
            job(30),
        ],
    )
    until = format_utc(START + timedelta(minutes=75))
    assert (await cancel_all(scheduler, f"label=tenant=a&label=tier=gold&to={until}"))[0] == 2
    assert await states(scheduler, [ids[0], ids[3]]) == {"cancelled"}
    assert await states(scheduler, [ids[1], ids[2], ids[4], ids[5]]) == {"pending"}
    after = format_utc(START + timedelta(minutes=100))
    assert (await cancel_all(scheduler, f"from={after}"))[0] == 1
    assert await states(scheduler, [ids[4]]) == {"cancelled"}
    assert (await cancel_all(scheduler, "prompt_type=log.append&label=tenant=a"))[0] == 2
    assert await states(scheduler, [ids[1], ids[2]]) == {"cancelled"}
    assert await states(scheduler, [ids[5]]) == {"pending"}


async def test_a_firing_job_is_reported_not_cancelled(scheduler: Scheduler) -> None:
    (firing_id, pending_id) = await created(
        scheduler, [job(60, {"tenant": "a"}), job(60, {"tenant": "a"})]
    )
    stored = scheduler.job_store.get(firing_id)
    assert stored is not None
    # An attempt has claimed it (as the activity does): the delete's swap must not win.
    scheduler.job_store.replace(stored, stored.record.model_copy(update={"state": "firing"}))

    reply = await scheduler.api.delete("/api/schedule?label=tenant=a")
    body = reply.json()
    assert (body["cancelled"], body["firing"], body["complete"]) == (1, [firing_id], True)
    assert await states(scheduler, [firing_id]) == {"firing"}
    assert await states(scheduler, [pending_id]) == {"cancelled"}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "limit=5",
        "label=tenant",
        "label=Tenant=a",
        "from=yesterday",
        "cursor=x&label=a=b",
        # A parameter the delete does not read would not narrow it: refused, never ignored.
        "label=a=b&limit=5",
        "label=a=b&state=paused",
        "prompt_type=log.append&lable=a=c",
    ],
)
async def test_a_delete_without_a_valid_filter_is_a_400_and_cancels_nothing(
    scheduler: Scheduler, query: str
) -> None:
    (transaction_id,) = await created(scheduler, [job(60, {"a": "b"})])
    problem = assert_problem(await scheduler.api.delete(f"/api/schedule?{query}"), 400)
    if not query or query == "limit=5":
        assert "POST /api/wipe" in problem["detail"]
    elif "&" in query and "cursor" not in query:
        assert "takes only label, prompt_type, from, to and cursor" in problem["detail"]
    assert await states(scheduler, [transaction_id]) == {"pending"}


async def test_a_cursor_of_one_filter_is_refused_by_another(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(removing, "CANCEL_MAX_JOBS", 100)
    await created(scheduler, [job(60, {"a": "b"}) for _ in range(150)])
    first = (await scheduler.api.delete("/api/schedule?label=a=b")).json()
    assert (first["cancelled"], first["complete"]) == (100, False)
    other = await scheduler.api.delete(f"/api/schedule?label=a=c&cursor={first['next_cursor']}")
    assert_problem(other, 400)


async def test_a_filtered_delete_during_a_running_attempt_reports_it_and_a_second_stops_it(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    """A real attempt in flight (its target calls the filtered delete while it answers): the
    delete's swap loses to the claim, the job is reported as firing and finishes its attempt;
    once it waits to retry, the same delete cancels it and no retry starts."""
    deletes: list[Reply] = []

    def delete_meanwhile(request: Request) -> Response:
        if not deletes:
            deletes.append(call_route(scheduler, "DELETE", "/api/schedule?label=tenant=a"))
        return Response("", status=503)

    httpserver.expect_request("/down").respond_with_handler(delete_meanwhile)
    body = {
        **job(5, {"tenant": "a"}, prompt_type="http.call"),
        "payload": {"url": httpserver.url_for("/down")},
        "retry": {"max_attempts": 5, "initial_delay_seconds": 60},
    }
    (transaction_id,) = await created(scheduler, [body])
    scheduler.host.run()
    scheduler.host.advance_to(START + timedelta(minutes=5))

    first = deletes[0].json()
    assert (first["cancelled"], first["firing"], first["complete"]) == (0, [transaction_id], True)
    assert await states(scheduler, [transaction_id]) == {"retrying"}
    assert (await cancel_all(scheduler, "label=tenant=a"))[:2] == (1, [])
    scheduler.host.advance_to(START + timedelta(hours=2))
    assert len(httpserver.log) == 1  # the attempt that ran; none of the four retries
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    assert (stored.record.state, stored.record.attempts) == ("cancelled", 1)


class ReplaceFailsOnce:
    """The job store, whose `nth` replace (1-based) fails as in a storage blip."""

    def __init__(self, store: Any, nth: int) -> None:
        self._store, self._left = store, nth

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def replace(self, *args: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import ServiceRequestError

        self._left -= 1
        if self._left == 0:
            raise ServiceRequestError("the store did not answer this once")
        return self._store.replace(*args, **kwargs)


# nth 1: the first page fails (a 503, whose other cancellation goes uncounted); 3 and 5: a
# later page, which the answer's cursor starts at again.
@pytest.mark.parametrize(("nth", "counted"), [(1, 5), (3, 6), (5, 6)])
async def test_a_store_error_midway_never_skips_the_jobs_of_its_page(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch, nth: int, counted: int
) -> None:
    """A store call that fails while a page is being cancelled: the answer never passes over
    that page (its cursor starts at it again, or, with no page done yet, a 503 says to send
    the request again), so a client that goes on until `complete` cancels every job, each
    counted at most once."""
    from blueprints import dependencies

    monkeypatch.setattr(removing, "WIPE_PAGE_SIZE", 2)
    ids = await created(scheduler, [job(60, {"tenant": "a"}) for _ in range(6)])
    store = ReplaceFailsOnce(scheduler.job_store, nth)
    cancelled, calls, cursor = 0, 0, ""
    with dependencies.overridden(job_store=lambda _settings: store):
        while calls < 5:
            calls += 1
            reply = await scheduler.api.delete(f"/api/schedule?label=tenant=a{cursor}")
            if reply.status == 503:
                continue  # nothing to go on from: the same request again
            assert reply.status == 200, reply.body
            body = reply.json()
            cancelled += body["cancelled"]
            if body["complete"]:
                break
            assert body["next_cursor"] is not None, body
            cursor = f"&cursor={body['next_cursor']}"
    assert await states(scheduler, ids) == {"cancelled"}
    assert cancelled == counted
