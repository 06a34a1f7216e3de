"""No credential a caller sends is readable in durable state or in the job store's rows.

A job whose headers, URL path, URL query and body carry secrets, and whose callback URLs
carry them in their path and query, runs its whole life (accepted with an Idempotency-Key,
waits past a continue-as-new, fails once, retries, succeeds, calls back); another is
deleted. Every piece of durable state the app wrote on the way —
orchestration inputs, outputs, custom status and history of every episode, activity inputs
and outputs, what the client sent the extension — and every row of the job tables are read,
and none holds a secret. The target did get them all: the job really carried them.
"""

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from storage.table_storage import expand_development_storage
from tests.support.scheduler import START, Scheduler

AUTH = "S3cr3tAuthValue7x"
API_KEY = "ApiK3yValue5v"
QUERY = "QueryT0kenValue9y"
PATH = "PathT0kenValue2z"
BODY = "BodyPa55wordValue4w"
CUSTOM = "CustomHeaderValue8q"
CALLBACK_PATH = "CallbackPathT0ken3u"
CALLBACK_QUERY = "CallbackQueryT0ken6t"
FAILURE_QUERY = "FailureCallbackT0ken1s"
SECRETS = (AUTH, API_KEY, QUERY, PATH, BODY, CUSTOM, CALLBACK_PATH, CALLBACK_QUERY, FAILURE_QUERY)


def durable_state(scheduler: Scheduler) -> Iterator[str]:
    """Everything the app has handed the durable backend so far, as text."""
    host = scheduler.host
    for instance_id in host.instance_ids():
        instance = host.instance(instance_id)
        yield from (instance.input_json or "", instance.output_json or "")
        yield instance.custom_status_json or ""
        yield json.dumps(instance.history)
    for call in host.activity_calls:
        yield from (call.input_json or "", call.result_json or "", call.error_message or "")
    for operation in host.entity_operations:
        yield from (operation.input_json or "", operation.result_json or "")
    yield from entity_states(scheduler)
    for client_call in host.client_calls:
        yield client_call.body or ""


def entity_states(scheduler: Scheduler) -> Iterator[str]:
    """The stored state of every entity operated on (a flow key's holders and queue)."""
    host = scheduler.host
    for name, key in {(op.name, op.key) for op in host.entity_operations}:
        yield host.entity(name, key).state_json or ""


def table_rows(scheduler: Scheduler) -> Iterator[str]:
    connection = expand_development_storage(scheduler.settings.azure_web_jobs_storage)
    job_table = scheduler.settings.job_table
    for table in (job_table, job_table + "due", job_table + "failed"):
        with (
            TableClient.from_connection_string(connection, table_name=table) as client,
            contextlib.suppress(ResourceNotFoundError),  # not made yet: nothing went there
        ):
            for row in client.list_entities():
                yield json.dumps(dict(row), default=str)


def leaks(texts: Iterator[str]) -> list[str]:
    seen = "\n".join(texts)
    return [secret for secret in SECRETS if secret in seen]


async def test_secrets_never_reach_durable_state_or_the_store_in_clear(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    received: list[Request] = []
    snapshots: list[str] = []
    answers = iter([503, 200])

    def target(request: Request) -> Response:
        received.append(request)
        # While the attempt is in flight its flow key's entity holds its slot.
        snapshots.extend(entity_states(scheduler))
        return Response("ok", status=next(answers))

    httpserver.expect_request(f"/hook/{PATH}").respond_with_handler(target)
    httpserver.expect_request(f"/done/{CALLBACK_PATH}").respond_with_data("noted")
    url = httpserver.url_for(f"/hook/{PATH}")
    callbacks = {
        "on_success": httpserver.url_for(f"/done/{CALLBACK_PATH}?sig={CALLBACK_QUERY}&n=1"),
        "on_failure": httpserver.url_for(f"/failed?api_key={FAILURE_QUERY}"),
    }
    payload: dict[str, Any] = {
        "method": "PUT",
        "url": f"{url}?token={QUERY}&page=2",
        "headers": {"Authorization": f"Bearer {AUTH}", "X-Api-Key": API_KEY, "X-Custom": CUSTOM},
        "json": {"password": BODY},
    }
    exec_at = START + timedelta(days=4)  # past one 3-day timer: a continue-as-new copy
    body = {
        "exec_at": exec_at.isoformat(),
        "prompt_type": "http.call",
        "payload": payload,
        "callbacks": callbacks,
        "flow_control": {},
    }
    created = await scheduler.api.request(
        "POST",
        "/api/schedule",
        body=json.dumps(
            {**body, "retry": {"max_attempts": 2, "initial_delay_seconds": 60}}
        ).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": "secret-job"},
    )
    assert created.status == 202, created.body
    transaction_id = created.json()["transaction_id"]
    deleted_id = await scheduler.accepted("http.call", payload, at=exec_at)

    scheduler.host.run()
    snapshots += durable_state(scheduler)
    assert (await scheduler.api.delete(f"/api/schedule/{deleted_id}")).status == 200
    for moment in (START + timedelta(days=3, minutes=1), exec_at, exec_at + timedelta(hours=1)):
        scheduler.host.advance_to(moment)
        snapshots += durable_state(scheduler)
        snapshots += table_rows(scheduler)

    assert len(received) == 2  # it ran: a failure, then the retry
    sent = received[-1]
    assert sent.headers["Authorization"] == f"Bearer {AUTH}"
    assert sent.args["token"] == QUERY
    assert sent.get_json() == {"password": BODY}
    assert scheduler.orchestration(transaction_id).episode_count == 2
    # The success callback went out, to its URL whole.
    [callback] = [r for r, _ in httpserver.log if r.path == f"/done/{CALLBACK_PATH}"]
    assert callback.args["sig"] == CALLBACK_QUERY
    held = [state for state in snapshots if '"holders"' in state]
    assert held, "the attempts held a slot of their flow key"

    assert leaks(iter(snapshots)) == []
    for path in (
        f"/api/schedule/{transaction_id}/status?history=true",
        f"/api/schedule/{transaction_id}/logs",
        f"/api/schedule/{deleted_id}/status?history=true",
        "/api/schedule",
    ):
        reply = await scheduler.api.get(path)
        assert reply.status == 200
        assert leaks(iter([reply.body.decode()])) == []


async def test_none_of_the_reviews_ten_planted_secrets_is_shown(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    # The security review planted these against a86a25e; its status showed all ten.
    planted = [f"Planted{n}Secret" for n in range(10)]
    echo = planted[9]

    def target(request: Request) -> Response:
        return Response(
            f"you sent {request.headers.get('X-Echo')}",
            status=302,
            headers={"Location": f"https://login.example/cb?code={planted[8]}&state=1"},
        )

    httpserver.expect_request(f"/hook/{planted[6]}").respond_with_handler(target)
    url = httpserver.url_for(f"/hook/{planted[6]}")
    payload = {
        "url": f"{url}?subscription-key={planted[3]}&X-Amz-Signature={planted[4]}"
        f"&api-key={planted[5]}",
        "headers": {
            "X-Access-Token": planted[0],
            "X-Webhook-Secret": planted[1],
            "Api-Token": planted[2],
            "X-Echo": echo,
        },
        "json": {"client_secret": planted[7]},
    }
    transaction_id = await scheduler.accepted("http.call", payload)
    scheduler.host.advance(3600)

    shown = [
        (await scheduler.api.get(path)).body.decode()
        for path in (
            f"/api/schedule/{transaction_id}/status?history=true",
            f"/api/schedule/{transaction_id}/logs",
            "/api/schedule",
            "/api/failed",
        )
    ]
    status = json.loads(shown[0])
    assert status["last_outcome"]["status_code"] == 302  # it ran, and its outcome is shown
    # A 302 is a failure: the job is a dead letter, shown with its attempts.
    (dead_letter,) = json.loads(shown[3])["jobs"]
    assert dead_letter["attempt_history"][0]["error"] == "target answered 302 FOUND"
    rows = "\n".join(table_rows(scheduler))
    assert dead_letter["transaction_id"] in rows
    assert [secret for secret in planted if secret in rows] == []
    assert [secret for secret in planted if any(secret in text for text in shown)] == []


async def test_a_reply_that_looks_like_json_is_shown_as_the_text_it_was(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    replies = {"object": '{"a": 1}', "quoted": '"quoted"', "deep": "[" * 1500 + "]" * 1500}
    for name, text in replies.items():
        httpserver.expect_request(f"/{name}").respond_with_data(text)
    ids = {
        name: await scheduler.accepted(
            "http.call", {"url": httpserver.url_for(f"/{name}"), "record_response_body": True}
        )
        for name in replies
    }
    scheduler.host.advance(3600)

    for name, transaction_id in ids.items():
        for path in (f"/api/schedule/{transaction_id}/status?history=true", "/api/schedule"):
            assert (await scheduler.api.get(path)).status == 200
        status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
        assert status["last_outcome"]["body_excerpt"] == replies[name]


async def test_an_old_incarnations_sealed_payload_does_not_open_in_the_new_one(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    # Someone with write access to the store copies the sealed payload (and callbacks) of
    # a deleted job into the job created again under the same Idempotency-Key: they must
    # not be sent. The generation changes on every move, so it cannot be what binds them;
    # the record's acceptance time does, and stays while a job is moved, paused or resumed.
    for path in ("/old", "/old/done", "/new", "/new/done"):
        httpserver.expect_request(path).respond_with_data("ok")
    headers = {"Content-Type": "application/json", "Idempotency-Key": "order-6"}

    async def create(path: str, at: str) -> str:
        body = {
            "exec_at": at,
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for(path), "headers": {"Authorization": AUTH}},
            "callbacks": {"on_success": httpserver.url_for(path + "/done")},
        }
        reply = await scheduler.api.request(
            "POST", "/api/schedule", body=json.dumps(body).encode(), headers=headers
        )
        assert reply.status == 202, reply.json()
        return str(reply.json()["transaction_id"])

    first = await create("/old", "2026-12-01T08:05:00Z")
    old = scheduler.job_store.get(first)
    assert old is not None
    scheduler.host.advance(6 * 60)
    assert (await scheduler.api.delete(f"/api/schedule/{first}")).status == 200
    second = await create("/new", "2026-12-01T08:20:00Z")
    assert second == first
    new = scheduler.job_store.get(second)
    assert new is not None
    forged = new.record.model_copy(
        update={
            "sealed_payload": old.record.sealed_payload,
            "sealed_callbacks": old.record.sealed_callbacks,
        }
    )
    scheduler.job_store.replace(new, forged)
    sent_before = len(httpserver.log)

    scheduler.host.advance(20 * 60)

    assert len(httpserver.log) == sent_before  # neither the old request nor its callback
    status = (await scheduler.api.get(f"/api/schedule/{second}/status")).json()
    assert status["state"] == "failed"
    assert "could not be unsealed" in status["last_outcome"]["error"]


async def test_a_moved_paused_and_resumed_job_still_opens_its_payload(
    scheduler: Scheduler, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/tick").respond_with_data("ok")
    reply = await scheduler.api.post(
        "/api/schedule",
        {
            "cron": "0 12 * * *",
            "prompt_type": "http.call",
            "payload": {"url": httpserver.url_for("/tick")},
        },
    )
    job = reply.json()["transaction_id"]
    assert (await scheduler.api.post(f"/api/schedule/{job}/pause")).status == 200
    assert (await scheduler.api.post(f"/api/schedule/{job}/resume")).status == 200
    moved = await scheduler.api.request(
        "PATCH",
        f"/api/schedule/{job}",
        json_body={"cron": "30 12 * * *"},
    )
    assert moved.status == 200, moved.json()
    scheduler.host.advance(5 * 3600)
    assert len(httpserver.log) == 1
    status = (await scheduler.api.get(f"/api/schedule/{job}/status")).json()
    assert status["last_run"]["state"] == "succeeded"
