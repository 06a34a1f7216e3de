"""Standard Webhooks signing of http.call, checked by the third-party `standardwebhooks`
library on what a real loopback receiver got, never by the scheduler's own code."""

import base64
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from delivery.egress import EgressPolicy, pinned_client
from delivery.prompts import FiringContext, PayloadRules, parse_payload
from delivery.prompts.http_call import HttpCallOutcome, HttpCallPayload, run_http_call
from scheduling.settings import SchedulerSettings
from tests.support.memory_log import MemoryJobLog

# Test secrets made for this file only.
OLD_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
NEW_SECRET = "whsec_" + base64.b64encode(bytes(range(200, 232))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
EXEC_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def settings(secrets: str = NEW_SECRET) -> SchedulerSettings:
    return SchedulerSettings(
        http_call_allowed_networks=[ip_network("127.0.0.0/8")],
        webhook_signing_secrets=SecretStr(secrets),
    )


def context(
    configured: SchedulerSettings,
    *,
    attempt: int = 1,
    generation: str = "g1",
    exec_at: datetime = EXEC_AT,
) -> FiringContext:
    policy = EgressPolicy.from_settings(configured)
    return FiringContext(
        transaction_id="tx-signed",
        exec_at=exec_at,
        settings=configured,
        job_log=MemoryJobLog(),
        clock=lambda: exec_at,
        open_http_client=lambda timeout: pinned_client(policy, timeout=timeout),
        attempt=attempt,
        generation=generation,
    )


def fire(payload: dict[str, Any], firing: FiringContext) -> HttpCallOutcome:
    policy = EgressPolicy.from_settings(firing.settings)
    model = parse_payload(
        "http.call", payload, PayloadRules(settings=firing.settings, vet_url=policy.vet_url)
    )
    return run_http_call(model, firing)  # type: ignore[arg-type]


def received(httpserver: HTTPServer) -> list[tuple[bytes, dict[str, str]]]:
    return [(request.get_data(), dict(request.headers)) for request, _ in httpserver.log]


def test_a_delivery_verifies_with_the_standardwebhooks_library(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    document = {"order": 42, "note": "héllo"}

    outcome = fire({"url": httpserver.url_for("/hook"), "json": document}, context(settings()))

    assert outcome.ok, outcome
    [(body, headers)] = received(httpserver)
    assert Webhook(NEW_SECRET).verify(body, headers) == document
    assert headers["Webhook-Id"].startswith("msg_")


def test_a_request_without_a_body_is_signed_too(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="GET").respond_with_data("ok")

    fire({"method": "GET", "url": httpserver.url_for("/hook")}, context(settings()))

    [(body, headers)] = received(httpserver)
    assert body == b""
    Webhook(NEW_SECRET).verify(body, headers, json_parse=False)


def test_a_receiver_with_another_secret_refuses_the_delivery(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")

    fire({"url": httpserver.url_for("/hook"), "body": "hello"}, context(settings()))

    [(body, headers)] = received(httpserver)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW_SECRET).verify(body + b"!", headers)  # nor does a changed body verify


def test_while_secrets_rotate_each_of_them_verifies(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")

    fire(
        {"url": httpserver.url_for("/hook"), "json": {"n": 1}},
        context(settings(f"{NEW_SECRET} , {OLD_SECRET}")),
    )

    [(body, headers)] = received(httpserver)
    assert len(headers["Webhook-Signature"].split(" ")) == 2
    assert Webhook(NEW_SECRET).verify(body, headers) == {"n": 1}
    assert Webhook(OLD_SECRET).verify(body, headers) == {"n": 1}


def test_the_retries_of_a_run_share_its_webhook_id_and_the_next_run_gets_another(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    url = httpserver.url_for("/hook")
    configured = settings()

    for firing in (
        context(configured, attempt=1),
        context(configured, attempt=2),  # a retry of the same run
        context(configured, exec_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),  # the next run
        context(configured, generation="g2"),  # a replay: a new generation
    ):
        fire({"url": url, "body": "x"}, firing)

    ids = [headers["Webhook-Id"] for _, headers in received(httpserver)]
    assert ids[0] == ids[1]
    assert len({ids[0], ids[2], ids[3]}) == 3
    for body, headers in received(httpserver):
        Webhook(NEW_SECRET).verify(body, headers, json_parse=False)


def test_without_a_secret_nothing_is_signed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")

    fire({"url": httpserver.url_for("/hook"), "body": "x"}, context(settings("")))

    [(_, headers)] = received(httpserver)
    assert not [name for name in headers if name.lower().startswith("webhook-")]


@pytest.mark.parametrize(
    "name", ["webhook-id", "Webhook-Signature", "WEBHOOK-TIMESTAMP", "webhook-x"]
)
def test_a_payload_may_not_set_webhook_headers(name: str) -> None:
    configured = settings()
    rules = PayloadRules(
        settings=configured, vet_url=EgressPolicy.from_settings(configured).vet_url
    )
    with pytest.raises(ValidationError) as refused:
        parse_payload("http.call", {"url": "http://127.0.0.1:8080/", "headers": {name: "v"}}, rules)
    assert f"header {name!r} is reserved" in str(refused.value)


def test_a_job_accepted_with_a_webhook_header_fires_without_its_copy(
    httpserver: HTTPServer,
) -> None:
    # Accepted before webhook-* was reserved: it fires, with only the scheduler's id.
    httpserver.expect_request("/hook").respond_with_data("ok")
    firing = context(settings())
    payload = HttpCallPayload.model_validate(
        {"url": httpserver.url_for("/hook"), "headers": {"Webhook-Id": "msg_forged"}}
    )
    run_http_call(payload, firing)

    [(body, headers)] = received(httpserver)
    assert headers["Webhook-Id"] == firing.message_id()
    Webhook(NEW_SECRET).verify(body, headers, json_parse=False)


@pytest.mark.parametrize(
    "secrets",
    [
        "not-a-whsec-value-at-all-but-long-enough",
        "whsec_%%%%not-base64%%%%",
        "whsec_" + base64.b64encode(b"short").decode(),
        f"{NEW_SECRET},whsec_@@@@",
    ],
)
def test_a_bad_secret_setting_fails_the_attempt_without_quoting_it_or_sending(
    httpserver: HTTPServer, secrets: str
) -> None:
    # Never sent unsigned when signing was asked for.
    outcome = fire({"url": httpserver.url_for("/hook"), "body": "x"}, context(settings(secrets)))

    assert not outcome.ok
    assert outcome.retryable  # an operator who fixes the setting lets the retries through
    assert outcome.error is not None
    assert outcome.error.startswith("WEBHOOK_SIGNING_SECRETS: secret ")
    for part in secrets.split(","):
        assert part.removeprefix("whsec_") not in outcome.error
    assert httpserver.log == []


def test_the_secret_never_shows_in_the_settings_repr() -> None:
    shown = repr(settings(f"{NEW_SECRET} {OLD_SECRET}")) + str(settings(NEW_SECRET).model_dump())
    assert NEW_SECRET.removeprefix("whsec_") not in shown
    assert OLD_SECRET.removeprefix("whsec_") not in shown
