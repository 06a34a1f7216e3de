import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from delivery.prompts import PayloadRules, UnknownPromptType, destination_of, parse_payload
from delivery.prompts.http_call import TRANSACTION_HEADER, HttpCallPayload
from scheduling.job_record import JobRecord, JobRun
from scheduling.models import ScheduleRequest
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


def schedule_request(exec_at: object) -> ScheduleRequest:
    return ScheduleRequest.model_validate(
        {"exec_at": exec_at, "prompt_type": "log.append", "payload": {}}
    )


@pytest.mark.parametrize(
    "exec_at", [1796119200, 1796119200.5, True, ["2026-12-01T00:00:00Z"], {"a": 1}]
)
def test_schedule_request_refuses_exec_at_that_is_not_a_string(exec_at: object) -> None:
    # pydantic alone would read 1796119200 as a Unix time (2026-12-01T10:00:00Z).
    with pytest.raises(ValidationError, match="ISO-8601 string with an offset") as raised:
        schedule_request(exec_at)
    assert [error["loc"] for error in raised.value.errors()] == [("exec_at",)]


@pytest.mark.parametrize("exec_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_schedule_request_refuses_exec_at_out_of_range(exec_at: str) -> None:
    with pytest.raises(ValidationError, match="out of range"):
        schedule_request(exec_at)


def test_schedule_request_normalises_exec_at_to_utc() -> None:
    request = schedule_request("2026-12-01T10:00:00+01:00")
    assert request.exec_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert request.exec_at.utcoffset() == timedelta(0)
    assert request.model_dump(mode="json")["exec_at"] == "2026-12-01T09:00:00Z"


def test_models_built_in_code_take_aware_datetimes_and_normalise_them() -> None:
    at = datetime(2026, 12, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    run = JobRun(transaction_id="tx", generation="g", exec_at=at)
    assert run.exec_at == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert run.exec_at.tzinfo is UTC
    # The durable round trip: JSON out, the same run back in.
    assert JobRun.model_validate_json(run.model_dump_json()) == run


def test_models_built_in_code_refuse_naive_datetimes() -> None:
    with pytest.raises(ValidationError, match="offset"):
        JobRun(transaction_id="tx", generation="g", exec_at=datetime(2026, 12, 1, 10))


@pytest.mark.parametrize(
    ("url", "method", "shown"),
    [
        (
            "https://user:pw@hooks.example.com/t0k3n/path?sig=abc#frag",
            "POST",
            "POST https://hooks.example.com",
        ),
        ("http://198.51.100.7:8080/x?token=1", "GET", "GET http://198.51.100.7:8080"),
        ("https://[2001:db8::1]:8443/a", "PUT", "PUT https://[2001:db8::1]:8443"),
    ],
)
def test_the_destination_shown_in_clear_is_method_and_origin_only(
    url: str, method: str, shown: str
) -> None:
    payload = parse_payload("http.call", {"url": url, "method": method}, RULES)
    assert destination_of(payload) == shown


def test_a_log_append_has_no_destination() -> None:
    assert destination_of(parse_payload("log.append", {"message": "m"}, RULES)) is None


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


@pytest.mark.parametrize(
    "name",
    [
        "X-Scheduler-Transaction-Id",
        "x-scheduler-transaction-id",
        "X-SCHEDULER-TRANSACTION-ID",
        "X-Scheduler-Attempt",
        "x-scheduler-",
    ],
)
def test_every_x_scheduler_header_is_reserved(name: str) -> None:
    with pytest.raises(ValidationError, match="reserved: X-Scheduler-\\* headers") as raised:
        parse_payload("http.call", {"url": "https://example.com", "headers": {name: "x"}}, RULES)
    assert [error["loc"] for error in raised.value.errors()] == [("headers",)]


def test_a_job_accepted_with_an_x_scheduler_header_fires_with_only_the_real_one() -> None:
    # Accepted before the prefix was reserved: validated again at fire time, without rules.
    payload = HttpCallPayload.model_validate(
        {"url": "https://example.com", "headers": {"x-scheduler-transaction-id": "forged"}}
    )
    headers = payload.request_headers("tx-1")
    assert [
        value for name, value in headers.items() if name.lower().startswith("x-scheduler-")
    ] == ["tx-1"]


def test_a_job_accepted_with_a_header_that_folds_into_ours_fires_without_it() -> None:
    payload = HttpCallPayload.model_validate(
        {
            "url": "https://example.com",
            "headers": {"webhook_id": "forged", "X_Scheduler_Transaction_Id": "forged", "A_B": "c"},
        }
    )
    headers = payload.request_headers("tx-1")
    assert "forged" not in headers.values()
    assert headers["A_B"] == "c"


@pytest.mark.parametrize("name", ["Host\n", "X-Ok\n", "X-Ok\r", "\nX-Ok", "X-Ok\x00"])
def test_a_header_name_with_a_line_break_or_nul_is_refused(name: str) -> None:
    # `^...$` with .match accepted "Host\n": `$` also matches before a final newline.
    assert ("headers",) in errors_of(
        "http.call", {"url": "https://example.com", "headers": {name: "x"}}
    )


@pytest.mark.parametrize("timeout", [True, False, "10", "1e1", [10], {"s": 10}])
def test_http_call_timeout_must_be_a_number(timeout: object) -> None:
    # Lax parsing stored true as 1.0 and "10" as 10.0.
    assert ("timeout_seconds",) in errors_of(
        "http.call", {"url": "https://example.com", "timeout_seconds": timeout}
    )


@pytest.mark.parametrize("timeout", [10, 2.5])
def test_http_call_timeout_takes_integers_and_decimals(timeout: float) -> None:
    payload = parse_payload(
        "http.call", {"url": "https://example.com", "timeout_seconds": timeout}, RULES
    )
    assert isinstance(payload, HttpCallPayload)
    assert payload.timeout_seconds == timeout


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        ({"max_attempts": "3"}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_attempts": 3.0}, "max_attempts"),
        ({"initial_delay_seconds": "30"}, "initial_delay_seconds"),
        ({"max_delay_seconds": False}, "max_delay_seconds"),
    ],
)
def test_retry_numbers_are_not_read_from_other_types(retry: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ScheduleRequest.model_validate(
            {
                "exec_at": "2026-12-01T00:00:00Z",
                "prompt_type": "log.append",
                "payload": {},
                "retry": retry,
            }
        )
    assert [error["loc"] for error in raised.value.errors()] == [("retry", field)]


def test_a_stored_job_still_reads_back_under_strict_models() -> None:
    # The store and the sealed payload hand back plain JSON: strict models must take it.
    record = JobRecord.model_validate(
        {
            "transaction_id": "tx",
            "generation": "g",
            "state": "pending",
            "exec_at": "2026-12-01T08:00:00Z",
            "prompt_type": "http.call",
            "accepted_at": "2026-11-01T00:00:00.123456Z",
            "updated_at": "2026-11-01T00:00:00.123456Z",
            "retry": {"max_attempts": 3, "initial_delay_seconds": 30.0, "max_delay_seconds": 60},
            "sealed_payload": {
                "alg": "A256GCM",
                "key_id": "local:k",
                "wrapped_key": "",
                "nonce": "",
                "ciphertext": "",
            },
        }
    )
    assert JobRecord.model_validate_json(record.model_dump_json()) == record
    payload = json.loads(json.dumps({"url": "https://example.com", "timeout_seconds": 10.0}))
    assert HttpCallPayload.model_validate(payload).timeout_seconds == 10.0
