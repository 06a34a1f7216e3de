from typing import Any

import pytest
from pydantic import ValidationError

from scheduling.models import ScheduleRequest
from scheduling.prompts import PayloadRules, UnknownPromptType, parse_payload
from scheduling.prompts.http_call import TRANSACTION_HEADER, HttpCallPayload
from scheduling.settings import SchedulerSettings


def refuse_nothing(url: str) -> None:
    return None


RULES = PayloadRules(
    settings=SchedulerSettings(
        http_call_max_timeout_seconds=30, http_call_max_request_body_bytes=100
    ),
    vet_url=refuse_nothing,
)


def errors_of(prompt_type: str, payload: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as raised:
        parse_payload(prompt_type, payload, RULES)
    return [tuple(error["loc"]) for error in raised.value.errors()]


def test_schedule_request_requires_every_field_and_no_more() -> None:
    with pytest.raises(ValidationError) as raised:
        ScheduleRequest.model_validate({"exec_at": "2026-12-01T00:00:00Z", "extra": 1})
    locations = {error["loc"][0] for error in raised.value.errors()}
    assert locations == {"prompt_type", "payload", "extra"}


def test_schedule_request_refuses_naive_exec_at() -> None:
    with pytest.raises(ValidationError, match="offset"):
        ScheduleRequest.model_validate(
            {"exec_at": "2026-12-01T00:00:00", "prompt_type": "log.append", "payload": {}}
        )


def test_unknown_prompt_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownPromptType, match=r"known types: http\.call, log\.append"):
        parse_payload("sms.send", {}, RULES)


def test_http_call_defaults() -> None:
    payload = parse_payload("http.call", {"url": "https://example.com/hook"}, RULES)
    assert isinstance(payload, HttpCallPayload)
    assert payload.method == "POST"
    assert payload.content() is None
    assert payload.model_dump(mode="json", by_alias=True, exclude_unset=True) == {
        "url": "https://example.com/hook"
    }


def test_http_call_method_is_case_insensitive() -> None:
    payload = parse_payload("http.call", {"url": "https://example.com", "method": "patch"}, RULES)
    assert isinstance(payload, HttpCallPayload)
    assert payload.method == "PATCH"


@pytest.mark.parametrize(
    ("payload", "location"),
    [
        ({}, ("url",)),
        ({"url": "https://example.com", "method": "TRACE"}, ("method",)),
        ({"url": "https://example.com", "headers": {"Host": "other"}}, ("headers",)),
        ({"url": "https://example.com", "headers": {"Transfer-Encoding": "chunked"}}, ("headers",)),
        ({"url": "https://example.com", "headers": {"connection": "close"}}, ("headers",)),
        ({"url": "https://example.com", "headers": {"X-A": "1\r\nX-B: 2"}}, ("headers",)),
        ({"url": "https://example.com", "headers": {"Bad Name": "1"}}, ("headers",)),
        ({"url": "https://example.com", "body": "a", "json": {"a": 1}}, ()),
        ({"url": "https://example.com", "body": "x" * 101}, ()),
        ({"url": "https://example.com", "timeout_seconds": 0}, ("timeout_seconds",)),
        ({"url": "https://example.com", "timeout_seconds": 31}, ("timeout_seconds",)),
        ({"url": "https://example.com", "surprise": True}, ("surprise",)),
    ],
)
def test_http_call_refuses(payload: dict[str, Any], location: tuple[Any, ...]) -> None:
    assert location in errors_of("http.call", payload)


def test_http_call_url_goes_through_the_destination_check() -> None:
    def refuse(url: str) -> None:
        raise ValueError(f"destination refused: {url}")

    rules = PayloadRules(settings=SchedulerSettings(), vet_url=refuse)
    with pytest.raises(ValidationError, match=r"destination refused: http://10\.0\.0\.1/"):
        parse_payload("http.call", {"url": "http://10.0.0.1/"}, rules)


def test_http_call_json_body_and_headers() -> None:
    payload = parse_payload(
        "http.call",
        {"url": "https://example.com", "json": None, "headers": {"content-type": "application/x"}},
        RULES,
    )
    assert isinstance(payload, HttpCallPayload)
    assert payload.content() == b"null"
    headers = payload.request_headers("tx-1")
    assert headers["content-type"] == "application/x"
    assert "Content-Type" not in headers
    assert headers[TRANSACTION_HEADER] == "tx-1"


def test_log_append_payload() -> None:
    assert ("message",) in errors_of("log.append", {})
    assert ("level",) in errors_of("log.append", {"message": "m", "level": "loud"})
    payload = parse_payload("log.append", {"message": "m", "fields": {"k": [1, 2]}}, RULES)
    assert payload.model_dump() == {"message": "m", "level": "info", "fields": {"k": [1, 2]}}
