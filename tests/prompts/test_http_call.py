"""http.call against a real local HTTP server, through the pinned egress transport."""

import json
import socket
import time
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from scheduling.egress import EgressPolicy, pinned_client
from scheduling.prompts import FiringContext, PayloadRules, parse_payload
from scheduling.prompts.http_call import TRANSACTION_HEADER, HttpCallOutcome, run_http_call
from scheduling.settings import SchedulerSettings
from tests.support.memory_log import MemoryJobLog

LOOPBACK_ONLY = SchedulerSettings(
    http_call_allowed_networks=[ip_network("127.0.0.0/8")],
    http_call_response_excerpt_bytes=64,
)


def fire(payload: dict[str, Any], settings: SchedulerSettings = LOOPBACK_ONLY) -> HttpCallOutcome:
    policy = EgressPolicy.from_settings(settings)
    rules = PayloadRules(settings=settings, vet_url=policy.vet_url)
    context = FiringContext(
        transaction_id="tx-123",
        exec_at=datetime(2026, 12, 1, tzinfo=UTC),
        settings=settings,
        job_log=MemoryJobLog(),
        clock=lambda: datetime(2026, 12, 1, tzinfo=UTC),
        open_http_client=lambda timeout: pinned_client(policy, timeout=timeout),
    )
    model = parse_payload("http.call", payload, rules)
    return run_http_call(model, context)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_method_and_headers_arrive_as_sent(httpserver: HTTPServer, method: str) -> None:
    httpserver.expect_oneshot_request("/hook", method=method).respond_with_data("fine")
    outcome = fire(
        {"method": method, "url": httpserver.url_for("/hook"), "headers": {"X-Custom": "v 1"}}
    )
    assert outcome.ok, outcome
    assert outcome.status_code == 200
    (request, _), *_ = httpserver.log
    assert request.method == method
    assert request.headers["X-Custom"] == "v 1"
    assert request.headers[TRANSACTION_HEADER] == "tx-123"
    httpserver.check_assertions()


def test_json_body_arrives_exactly(httpserver: HTTPServer) -> None:
    document = {"order": 42, "items": ["a", "b"], "note": "héllo", "nothing": None}
    httpserver.expect_oneshot_request("/orders", method="POST", json=document).respond_with_json(
        {"accepted": True}, status=201
    )
    outcome = fire({"url": httpserver.url_for("/orders"), "json": document})
    assert outcome.ok
    assert outcome.status_code == 201
    assert json.loads(outcome.body_excerpt) == {"accepted": True}
    (request, _), *_ = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    httpserver.check_assertions()


def test_text_body_arrives_exactly(httpserver: HTTPServer) -> None:
    text = "line one\nline two ✓"
    httpserver.expect_oneshot_request("/text", method="PUT", data=text.encode()).respond_with_data(
        "", status=204
    )
    outcome = fire(
        {
            "method": "PUT",
            "url": httpserver.url_for("/text"),
            "body": text,
            "headers": {"Content-Type": "text/markdown"},
        }
    )
    assert outcome.ok
    (request, _), *_ = httpserver.log
    assert request.headers["Content-Type"] == "text/markdown"
    httpserver.check_assertions()


def test_non_2xx_is_a_failed_outcome(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/boom").respond_with_data(
        "database on fire", status=500, headers={"Set-Cookie": "s=1", "Retry-After": "30"}
    )
    outcome = fire({"url": httpserver.url_for("/boom")})
    assert not outcome.ok
    assert outcome.status_code == 500
    assert outcome.error == "target answered 500 INTERNAL SERVER ERROR"
    assert outcome.body_excerpt == "database on fire"
    assert outcome.headers["retry-after"] == "30"
    assert "set-cookie" not in outcome.headers


def test_redirects_are_not_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/moved").respond_with_data(
        "", status=302, headers={"Location": "/elsewhere"}
    )
    outcome = fire({"url": httpserver.url_for("/moved")})
    assert not outcome.ok
    assert outcome.status_code == 302
    assert outcome.headers["location"] == "/elsewhere"
    assert [request.path for request, _ in httpserver.log] == ["/moved"]


def test_long_body_is_cut_to_the_excerpt(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data("x" * 100_000)
    outcome = fire({"url": httpserver.url_for("/big")})
    assert outcome.ok
    assert outcome.body_excerpt == "x" * 64
    assert outcome.body_truncated


def test_timeout_is_a_failed_outcome(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.0)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    outcome = fire({"url": httpserver.url_for("/slow"), "timeout_seconds": 0.2})
    assert not outcome.ok
    assert outcome.status_code is None
    assert outcome.error == "timed out after 0.2 s"


def test_connection_refused_is_a_failed_outcome() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    outcome = fire({"url": f"http://127.0.0.1:{port}/"})
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith("could not connect")


def test_destination_refused_at_fire_time_sends_nothing(httpserver: HTTPServer) -> None:
    # Accepted while loopback was allowed; the operator removed it before the job fired.
    settings = SchedulerSettings()
    policy = EgressPolicy.from_settings(settings)
    context = FiringContext(
        transaction_id="tx-1",
        exec_at=datetime(2026, 12, 1, tzinfo=UTC),
        settings=settings,
        job_log=MemoryJobLog(),
        clock=lambda: datetime(2026, 12, 1, tzinfo=UTC),
        open_http_client=lambda timeout: pinned_client(policy, timeout=timeout),
    )
    payload = parse_payload(
        "http.call",
        {"url": httpserver.url_for("/hook")},
        PayloadRules(
            settings=LOOPBACK_ONLY, vet_url=EgressPolicy.from_settings(LOOPBACK_ONLY).vet_url
        ),
    )
    outcome = run_http_call(payload, context)  # type: ignore[arg-type]
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith("destination refused:")
    assert not outcome.retryable
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("status", "retryable"), [(503, True), (429, True), (500, True), (404, False), (400, False)]
)
def test_which_statuses_are_worth_retrying(
    httpserver: HTTPServer, status: int, retryable: bool
) -> None:
    httpserver.expect_request("/s").respond_with_data(
        "", status=status, headers={"Retry-After": "7"}
    )
    outcome = fire({"url": httpserver.url_for("/s")})
    assert outcome.retryable is retryable
    assert outcome.retry_after_seconds == 7


def test_connection_failures_are_retryable() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    assert fire({"url": f"http://127.0.0.1:{port}/"}).retryable
