"""Reading requests: every bad input is a 4xx problem, never an exception that becomes a 500."""

import json
from typing import Any

import azure.functions as func
import pytest

from api.problems import ProblemError
from blueprints.http_io import MAX_JSON_DEPTH, query_int, read_json_body

LIMIT = 1000


def post(body: bytes, **headers: str) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST",
        url="http://127.0.0.1:7071/api/schedule",
        headers={"Content-Type": "application/json", **headers},
        body=body,
    )


def get(**params: str) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET", url="http://127.0.0.1:7071/api/schedule", params=params, body=b""
    )


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ProblemError) as raised:
        call()
    document: dict[str, Any] = json.loads(raised.value.problem.model_dump_json())
    return document


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,  # json.loads raised RecursionError on this
        b'{"a":' * 100_000,
        nested(5_000),
        nested(MAX_JSON_DEPTH + 1),
        ("{" + '"a":{' * MAX_JSON_DEPTH + "}" * (MAX_JSON_DEPTH + 1)).encode(),
    ],
)
def test_deeply_nested_json_is_malformed_json(body: bytes) -> None:
    problem = refused(lambda: read_json_body(post(body), len(body)))
    assert problem["status"] == 400
    assert problem["type"].endswith(":malformed-json")
    assert "levels deep" in problem["detail"] or "not JSON" in problem["detail"]


def test_nesting_up_to_the_limit_is_read() -> None:
    body = nested(MAX_JSON_DEPTH)
    document = read_json_body(post(body), len(body))
    for _ in range(MAX_JSON_DEPTH - 1):
        (document,) = document
    assert document == []


def test_a_wide_flat_document_is_read() -> None:
    body = json.dumps({"items": [{"n": index} for index in range(5_000)]}).encode()
    assert len(read_json_body(post(body), len(body))["items"]) == 5_000


@pytest.mark.parametrize("declared", ["²", "\u0661\u0662", "1e3", "-1", "0x10", "", "1 2"])
def test_a_malformed_content_length_is_ignored(declared: str) -> None:
    # The body itself is small: only its real size counts.
    assert read_json_body(post(b"{}", **{"Content-Length": declared}), LIMIT) == {}


@pytest.mark.parametrize("declared", ["1001", "0001001", "9" * 10, "9" * 5000])
def test_a_content_length_over_the_limit_is_413(declared: str) -> None:
    problem = refused(lambda: read_json_body(post(b"{}", **{"Content-Length": declared}), LIMIT))
    assert problem["status"] == 413


@pytest.mark.parametrize("declared", ["2", "1000", "0000000000002"])
def test_a_content_length_within_the_limit_is_fine(declared: str) -> None:
    assert read_json_body(post(b"{}", **{"Content-Length": declared}), LIMIT) == {}


@pytest.mark.parametrize(
    "raw", ["²", "\u0661", "\u0663", "1²", "\uff15", "+5", "-1", " 5", "5 ", "1e2", "0x5"]
)
def test_query_int_refuses_anything_but_ascii_digits(raw: str) -> None:
    problem = refused(lambda: query_int(get(limit=raw), "limit", 50, 1, 500))
    assert problem["status"] == 400
    assert problem["type"].endswith(":invalid-query")
    assert problem["detail"] == "limit must be a whole number from 1 to 500"


@pytest.mark.parametrize("raw", ["0", "501", "9" * 10, "1" + "0" * 5000])
def test_query_int_refuses_out_of_range_and_overlong_numbers(raw: str) -> None:
    assert refused(lambda: query_int(get(limit=raw), "limit", 50, 1, 500))["status"] == 400


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("500", 500), ("007", 7), ("", 50)])
def test_query_int_reads_ascii_digits(raw: str, expected: int) -> None:
    assert query_int(get(limit=raw), "limit", 50, 1, 500) == expected


def test_query_int_default_when_absent() -> None:
    assert query_int(get(), "limit", 50, 1, 500) == 50


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(b'{"a": 1, "a": 2}', "the key 'a' more than once", id="top-level"),
        pytest.param(b'{"payload": {"json": {"to": "x", "to": "y"}}}', "the key 'to'", id="nested"),
        pytest.param(b'[{"k": 1}, {"k": 2, "k": 2}]', "the key 'k'", id="same-value"),
        pytest.param(b'{"\\u0061": 1, "a": 2}', "the key 'a'", id="escaped-spelling"),
    ],
)
def test_a_repeated_key_is_a_validation_problem(body: bytes, words: str) -> None:
    # json.loads kept the last value silently; a reviewer reading the body sees the first.
    problem = refused(lambda: read_json_body(post(body), LIMIT))
    assert problem["status"] == 422
    assert problem["type"] == "urn:durable-scheduler:problem:validation"
    assert words in problem["detail"]
    assert problem["errors"][0]["type"] == "duplicate_key"


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E309", "123456789e999", "1.5e308000"])
def test_a_number_too_large_for_a_float_is_a_validation_problem(number: str) -> None:
    # It became inf, then null in the stored job: the target got something else than sent.
    body = f'{{"json": {{"amount": {number}}}}}'.encode()
    problem = refused(lambda: read_json_body(post(body), LIMIT))
    assert problem["status"] == 422
    assert problem["type"] == "urn:durable-scheduler:problem:validation"
    assert f"the number '{number}' is too large to be represented" in problem["detail"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_stay_malformed_json(literal: str) -> None:
    problem = refused(lambda: read_json_body(post(f'{{"n": {literal}}}'.encode()), LIMIT))
    assert problem["status"] == 400
    assert problem["type"].endswith(":malformed-json")


def test_finite_numbers_and_distinct_keys_are_read() -> None:
    body = b'{"a": 1e308, "b": -2.5e-400, "c": 12345678901234567890, "A": {"a": 1}}'
    assert read_json_body(post(body), LIMIT) == {
        "a": 1e308,
        "b": -0.0,
        "c": 12345678901234567890,
        "A": {"a": 1},
    }


def test_a_long_repeated_key_is_shown_cut() -> None:
    key = "k" * 10_000
    body = json.dumps({"x": 1}).replace('"x"', f'"{key}"').encode()
    body = body[:-1] + f', "{key}": 2}}'.encode()
    problem = refused(lambda: read_json_body(post(body), len(body)))
    assert problem["status"] == 422
    assert len(problem["detail"]) < 200
