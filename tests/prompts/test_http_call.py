"""http.call against a real local HTTP server, through the pinned egress transport."""

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from delivery.egress import EgressPolicy, pinned_client
from delivery.prompts import FiringContext, PayloadRules, parse_payload, run_prompt
from delivery.prompts.http_call import (
    MAX_RETRY_AFTER_SECONDS,
    TRANSACTION_HEADER,
    HttpCallOutcome,
    HttpCallPayload,
    retry_after_seconds,
    run_http_call,
)
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
    outcome = fire(
        {"url": httpserver.url_for("/orders"), "json": document, "record_response_body": True}
    )
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
    outcome = fire({"url": httpserver.url_for("/boom"), "record_response_body": True})
    assert not outcome.ok
    assert outcome.status_code == 500
    assert outcome.error == "target answered 500 INTERNAL SERVER ERROR"
    assert outcome.body_excerpt == "database on fire"
    assert outcome.headers["retry-after"] == "30"
    assert "set-cookie" not in outcome.headers


def test_redirects_are_not_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/moved").respond_with_data(
        "", status=302, headers={"Location": "/elsewhere?page=2"}
    )
    outcome = fire({"url": httpserver.url_for("/moved")})
    assert not outcome.ok
    assert outcome.status_code == 302
    assert outcome.headers["location"] == "[redacted]"
    assert [request.path for request, _ in httpserver.log] == ["/moved"]


def test_a_location_shows_its_origin_only(httpserver: HTTPServer) -> None:
    # A redirect often carries the caller's own credentials onward (?code=, a token path).
    location = "https://login.example/cb/t0k3n?code=S3cret&state=ok"
    httpserver.expect_request("/moved").respond_with_data(
        "", status=302, headers={"Location": location}
    )
    outcome = fire({"url": httpserver.url_for("/moved?code=S3cret")})
    assert outcome.headers["location"] == "https://login.example/[redacted]"


def test_the_response_body_is_kept_only_when_the_job_asks(httpserver: HTTPServer) -> None:
    # A target may echo what it was sent, credentials included: its words are opt-in.
    httpserver.expect_request("/echo").respond_with_data("Authorization: Bearer S3cret")
    outcome = fire(
        {"url": httpserver.url_for("/echo"), "headers": {"Authorization": "Bearer S3cret"}}
    )
    assert outcome.ok
    assert outcome.body_excerpt == ""
    assert not outcome.body_truncated


def test_long_body_is_cut_to_the_excerpt(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data("x" * 100_000)
    outcome = fire({"url": httpserver.url_for("/big"), "record_response_body": True})
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
    assert outcome.error == "no complete response within 0.2 s"


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


# -- header values are checked when the job is created -----------------------------------------

SECRET = "s3cret"


def rules(settings: SchedulerSettings = LOOPBACK_ONLY) -> PayloadRules:
    return PayloadRules(settings=settings, vet_url=EgressPolicy.from_settings(settings).vet_url)


@pytest.mark.parametrize(
    "value",
    [
        f"Bearer {SECRET} ",  # trailing space: h11 refused it at fire time, quoting the value
        f" Bearer {SECRET}",
        f"Bearer {SECRET}\t",
        f"Bearer\x7f{SECRET}",
        f"Bearer\x01{SECRET}",
        f"Bearer {SECRET}\r\nX-Injected: 1",
        f"Bearer {SECRET}\n",
        f"Bearer {SECRET}\0",
        f"Bearer {SECRET}é",
        f"Bearer {SECRET}\u2028",
        "x" * 8193,
    ],
)
def test_a_header_value_outside_the_field_value_grammar_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_payload(
            "http.call",
            {"url": "http://127.0.0.1:8080/", "headers": {"Authorization": value}},
            rules(),
        )
    (error,) = raised.value.errors(include_input=False)
    assert error["loc"] == ("headers",)
    assert "'Authorization'" in error["msg"]
    assert SECRET not in error["msg"]
    assert "xxxx" not in error["msg"]


@pytest.mark.parametrize(
    "value", ["", "v", "Bearer s3cret", "a \t b", "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "x" * 8192]
)
def test_a_header_value_inside_the_grammar_is_accepted(value: str) -> None:
    payload = parse_payload(
        "http.call", {"url": "http://127.0.0.1:8080/", "headers": {"X-Value": value}}, rules()
    )
    assert isinstance(payload, HttpCallPayload)
    assert payload.headers == {"X-Value": value}


# -- outcomes never carry request data ------------------------------------------------------


def context_with(open_http_client: Callable[[float], httpx.Client]) -> FiringContext:
    return FiringContext(
        transaction_id="tx-123",
        exec_at=datetime(2026, 12, 1, tzinfo=UTC),
        settings=LOOPBACK_ONLY,
        job_log=MemoryJobLog(),
        clock=lambda: datetime(2026, 12, 1, tzinfo=UTC),
        open_http_client=open_http_client,
    )


def pinned(timeout: float) -> httpx.Client:
    return pinned_client(EgressPolicy.from_settings(LOOPBACK_ONLY), timeout=timeout)


def test_a_header_h11_refuses_at_fire_time_is_not_quoted(httpserver: HTTPServer) -> None:
    # A job accepted before header values were checked fires as accepted, without leaking.
    payload = {
        "url": httpserver.url_for("/hook"),
        "headers": {"Authorization": f"Bearer {SECRET} "},
    }
    outcome = run_prompt("http.call", payload, context_with(pinned))
    assert isinstance(outcome, HttpCallOutcome)
    assert not outcome.ok
    assert outcome.error == "the request could not be sent (LocalProtocolError)"
    assert SECRET not in outcome.model_dump_json()
    assert not outcome.retryable
    assert httpserver.log == []


def test_an_unknown_failure_is_named_by_its_type_only() -> None:
    def explode(timeout: float) -> httpx.Client:
        raise RuntimeError(f"could not use Authorization: Bearer {SECRET}")

    payload = parse_payload("http.call", {"url": "http://127.0.0.1:8080/"}, rules())
    outcome = run_http_call(payload, context_with(explode))  # type: ignore[arg-type]
    assert outcome.error == "the request failed (RuntimeError)"
    assert SECRET not in outcome.model_dump_json()
    assert not outcome.retryable


def test_a_refused_connection_names_neither_path_nor_query() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    outcome = fire({"url": f"http://127.0.0.1:{port}/private-path?token={SECRET}"})
    assert outcome.error is not None
    assert outcome.error.startswith("could not connect: ")
    assert "private-path" not in outcome.error
    assert SECRET not in outcome.error
    assert "\n" not in outcome.error
    assert outcome.retryable


# -- Retry-After ------------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "²",  # "²".isdigit() is True and float("²") raised
        "\u0661\u0662",
        "\uff15",
        "1²",
        "-5",
        "+5",
        "1.5",
        "1e3",
        "inf",
        "nan",
        "",
        "   ",
        "soon",
        "Wed, 21 Oct 2015 07:28:00",  # no zone: not an HTTP-date
        "Wed, 21 Oct 2015 07:28:00 +99999999999999999999",  # OverflowError inside email.utils
        "Wed, 21 Oct 99999 07:28:00 GMT",
        "Wed, 32 Oct 2015 07:28:00 GMT",
    ],
)
def test_an_unusable_retry_after_is_ignored(value: str) -> None:
    assert retry_after_seconds(value, NOW) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("007", 7.0),
        ("0", 0.0),
        ("9" * 5000, float(MAX_RETRY_AFTER_SECONDS)),
        ("Tue, 01 Dec 2026 00:01:00 GMT", 60.0),
        ("Mon, 30 Nov 2026 00:00:00 GMT", 0.0),
    ],
)
def test_a_usable_retry_after_is_read(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, NOW) == seconds


# -- what is worth retrying, by method ------------------------------------------------------
#
# A failure before anything was sent may be retried for any method; one after the request may
# have reached the target only for the idempotent methods, or a POST could happen twice.

IDEMPOTENT = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]
NOT_IDEMPOTENT = ["POST", "PATCH"]
BY_METHOD = [*((method, True) for method in IDEMPOTENT), *((m, False) for m in NOT_IDEMPOTENT)]


@pytest.mark.parametrize(("method", "retryable"), BY_METHOD)
def test_a_read_timeout_is_retried_only_for_idempotent_methods(
    httpserver: HTTPServer, method: str, retryable: bool
) -> None:
    arrived: list[str] = []
    answered = threading.Event()

    def slow(request: Request) -> Response:
        arrived.append(request.method)
        time.sleep(0.6)
        answered.set()
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    outcome = fire({"method": method, "url": httpserver.url_for("/slow"), "timeout_seconds": 0.2})
    assert outcome.error == "no complete response within 0.2 s"
    assert outcome.retryable is retryable
    # The target did get the request: that is why a POST must not be sent again.
    assert answered.wait(5)  # and the one-at-a-time server is free for the next test
    assert arrived == [method]


@pytest.mark.parametrize(
    ("method", "retryable"),
    [(method, retryable) for method, retryable in BY_METHOD if method != "HEAD"],
)
def test_a_response_past_the_total_time_is_retried_only_for_idempotent_methods(
    httpserver: HTTPServer, method: str, retryable: bool
) -> None:
    finished = threading.Event()

    def trickle(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            try:
                for _ in range(8):
                    time.sleep(0.1)
                    yield b"x"
            finally:
                finished.set()

        return Response(chunks())

    httpserver.expect_request("/trickle").respond_with_handler(trickle)
    outcome = fire(
        {"method": method, "url": httpserver.url_for("/trickle"), "timeout_seconds": 0.35}
    )
    assert outcome.error == "no complete response within 0.35 s"
    assert outcome.retryable is retryable
    assert finished.wait(5)


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A server that reads one request and closes the connection without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve_one() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(2)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    with listener:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        thread.join(timeout=5)


@pytest.mark.parametrize(("method", "retryable"), BY_METHOD)
def test_a_hang_up_after_the_request_is_retried_only_for_idempotent_methods(
    hangs_up: str, method: str, retryable: bool
) -> None:
    outcome = fire({"method": method, "url": hangs_up, "headers": {"Authorization": SECRET}})
    assert outcome.error == "the connection failed during the exchange (RemoteProtocolError)"
    assert outcome.retryable is retryable


@pytest.mark.parametrize("method", [*IDEMPOTENT, *NOT_IDEMPOTENT])
def test_a_refused_connection_is_retried_for_every_method(method: str) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    assert fire({"method": method, "url": f"http://127.0.0.1:{port}/"}).retryable


@pytest.mark.parametrize("method", [*IDEMPOTENT, *NOT_IDEMPOTENT])
@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_a_retryable_status_is_retried_for_every_method(
    httpserver: HTTPServer, method: str, status: int
) -> None:
    httpserver.expect_request("/s").respond_with_data("", status=status)
    outcome = fire({"method": method, "url": httpserver.url_for("/s")})
    assert outcome.status_code == status
    assert outcome.retryable


def raising(error: Exception) -> Callable[[float], httpx.Client]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return lambda timeout: httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("error", "message", "sent"),
    [
        (httpx.ConnectTimeout("connect timed out"), "no complete response within 1 s", False),
        (httpx.PoolTimeout("pool timed out"), "no complete response within 1 s", False),
        (httpx.ConnectError("[Errno 111] Connection refused"), "could not connect: ", False),
        (httpx.ReadTimeout(f"read {SECRET}"), "no complete response within 1 s", True),
        (httpx.WriteTimeout(f"write {SECRET}"), "no complete response within 1 s", True),
        (httpx.ReadError(SECRET), "the connection failed during the exchange (ReadError)", True),
        (httpx.WriteError(SECRET), "the connection failed during the exchange (WriteError)", True),
        (
            httpx.RemoteProtocolError(SECRET),
            "the connection failed during the exchange (RemoteProtocolError)",
            True,
        ),
    ],
)
@pytest.mark.parametrize("method", [*IDEMPOTENT, *NOT_IDEMPOTENT])
def test_transport_failures_by_whether_the_request_may_have_been_sent(
    error: Exception, message: str, sent: bool, method: str
) -> None:
    payload = parse_payload(
        "http.call",
        {"method": method, "url": "http://127.0.0.1:8080/", "timeout_seconds": 1},
        rules(),
    )
    outcome = run_http_call(payload, context_with(raising(error)))  # type: ignore[arg-type]
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith(message)
    assert SECRET not in outcome.error
    assert outcome.retryable is (not sent or method in IDEMPOTENT)


@pytest.fixture
def fresh_http_loggers() -> Iterator[None]:
    """httpx's and httpcore's loggers as a new worker process has them: level unset."""
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.usefixtures("fresh_http_loggers")
def test_secret_query_values_never_reach_the_app_logs(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    # httpx logged "HTTP Request: GET http://...?token=..." at INFO, httpcore more at DEBUG.
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/hook").respond_with_data("ok")
    secrets = ("S1-token-value", "S2-sig-value", "S3-code-value")
    url = httpserver.url_for("/hook") + "?token={}&sig={}&code={}".format(*secrets)

    outcome = fire({"method": "GET", "url": url})

    assert outcome.ok
    (request, _), *_ = httpserver.log
    assert request.args["token"] == secrets[0]  # the target did get them
    # Everything the process logged, except the target server's own access log.
    app_log = "\n".join(
        record.getMessage() for record in caplog.records if record.name != "werkzeug"
    )
    for secret in secrets:
        assert secret not in app_log
    chatty = [r for r in caplog.records if r.name.split(".")[0] in ("httpx", "httpcore")]
    assert all(record.levelno >= logging.WARNING for record in chatty)
