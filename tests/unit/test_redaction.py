"""Secret header values never reach the job log or a status response."""

from typing import Any

import pytest

from scheduling.job_log.redaction import (
    REDACTED,
    SECRET_HEADERS,
    redact_fields,
    redact_headers,
    secret_header_names,
)
from scheduling.settings import SchedulerSettings


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "PROXY-AUTHORIZATION",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "x-functions-key",
        " Authorization ",
    ],
)
def test_built_in_secret_headers_are_redacted_whatever_their_case(name: str) -> None:
    assert redact_headers({name: "secret", "Accept": "text/plain"}) == {
        name: REDACTED,
        "Accept": "text/plain",
    }


def test_extra_names_are_redacted_case_insensitively() -> None:
    headers = {"X-Tenant-Token": "secret", "x-other": "secret", "X-Visible": "shown"}
    assert redact_headers(headers, ["x-tenant-token", " X-OTHER "]) == {
        "X-Tenant-Token": REDACTED,
        "x-other": REDACTED,
        "X-Visible": "shown",
    }


def test_the_redacted_headers_setting_feeds_the_extra_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDACTED_HEADERS", "X-Tenant-Token, X-Signature")
    settings = SchedulerSettings()

    redacted = redact_headers(
        {"x-signature": "sig", "X-Tenant-Token": "t"}, settings.redacted_headers
    )

    assert redacted == {"x-signature": REDACTED, "X-Tenant-Token": REDACTED}


def test_headers_are_copied_not_changed_in_place() -> None:
    headers = {"Authorization": "Bearer token"}
    redact_headers(headers)
    assert headers == {"Authorization": "Bearer token"}


def test_secret_header_names_merge_the_built_ins_and_skip_blanks() -> None:
    assert secret_header_names(["X-One", "", "  "]) == SECRET_HEADERS | {"x-one"}


def test_nested_secret_keys_are_redacted_at_any_depth() -> None:
    fields: dict[str, Any] = {
        "url": "https://example.invalid/",
        "request": {
            "headers": {"Authorization": "Bearer t", "Content-Type": "application/json"},
            "body": {"items": [{"cookie": "c", "keep": 1}]},
        },
        "response": {"status": 200, "headers": {"Set-Cookie": ["a=1", "b=2"]}},
    }

    assert redact_fields(fields) == {
        "url": "https://example.invalid/",
        "request": {
            "headers": {"Authorization": REDACTED, "Content-Type": "application/json"},
            "body": {"items": [{"cookie": REDACTED, "keep": 1}]},
        },
        "response": {"status": 200, "headers": {"Set-Cookie": REDACTED}},
    }
    assert fields["request"]["headers"]["Authorization"] == "Bearer t"  # input untouched


def test_header_pairs_are_redacted() -> None:
    pairs = [["Authorization", "Bearer t"], ("X-Custom", "c"), ["Accept", "*/*"]]

    assert redact_fields({"headers": pairs}, ["x-custom"]) == {
        "headers": [["Authorization", REDACTED], ("X-Custom", REDACTED), ["Accept", "*/*"]]
    }


@pytest.mark.parametrize("value", [None, 1, 2.5, True, "Authorization", ["cookie"], []])
def test_values_without_secret_keys_come_back_equal(value: Any) -> None:
    assert redact_fields(value) == value


def test_an_extra_name_applies_to_nested_fields() -> None:
    assert redact_fields({"payload": {"X-Signature": "s"}}, ["x-signature"]) == {
        "payload": {"X-Signature": REDACTED}
    }
