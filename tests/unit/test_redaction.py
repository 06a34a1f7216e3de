"""Secret header values never reach the job log or a status response."""

from typing import Any

import pytest

from scheduling.job_log.redaction import (
    REDACTED,
    SECRET_HEADERS,
    redact_fields,
    redact_headers,
    redact_url,
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
        "Api-Key",
        "Ocp-Apim-Subscription-Key",
        "X-Auth-Token",
        "X-Goog-Api-Key",
        "PRIVATE-TOKEN",
        "X-Amz-Security-Token",
        "X-CSRF-Token",
        "X-XSRF-TOKEN",
        "Authentication",
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


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://func.example/api/hook?code=abc123==&name=x",
            f"https://func.example/api/hook?code={REDACTED}&name=x",
        ),
        (
            "https://acct.blob.example/c/b?sv=2024-01-01&se=2030&SIG=a%2Bb%3D&sp=r",
            f"https://acct.blob.example/c/b?sv=2024-01-01&se=2030&SIG={REDACTED}&sp=r",
        ),
        *(
            (
                f"https://h.example/p?{name}=v1&keep=1",
                f"https://h.example/p?{name}={REDACTED}&keep=1",
            )
            for name in [
                "code",
                "sig",
                "signature",
                "token",
                "access_token",
                "api_key",
                "apikey",
                "key",
                "secret",
                "password",
                "client_secret",
                "Access_Token",
                "API_KEY",
                "%6Bey",  # percent-encoded "key"
            ]
        ),
        (
            "https://h.example/p?token=1&token=2;secret=3#token=frag",
            f"https://h.example/p?token={REDACTED}&token={REDACTED};secret={REDACTED}#token=frag",
        ),
        (
            "https://user:pa55@h.example/p?q=1",
            f"https://user:{REDACTED}@h.example/p?q=1",
        ),
    ],
)
def test_secret_query_parameters_are_redacted(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://h.example/p",
        "https://h.example/p?",
        "https://h.example/p?keys=1&monkey=2&tokens=3&codes=4&sigma=5",
        "https://h.example/p?q=%20a+b&empty=&flag&key=&x=%E2%9C%93",
        "https://h.example/p?q=?token=inside-a-value",
        "https://h.example/a/b;token=matrix?x=1",
        "https://user@h.example:8443/p#frag",
        "not a url at all ?? & ==",
        "",
    ],
)
def test_urls_without_secret_values_are_kept_byte_for_byte(url: str) -> None:
    assert redact_url(url) == url


def test_urls_under_a_url_key_are_redacted_at_any_depth() -> None:
    fields: dict[str, Any] = {
        "url": "https://h.example/hook?code=k&x=1",
        "payload": {"URL": "https://h.example/?sig=s", "note": "https://h.example/?sig=kept"},
        "calls": [{"url": "https://h.example/?token=t"}],
        "urls": ["https://h.example/?key=not-under-a-url-key"],
    }

    assert redact_fields(fields) == {
        "url": f"https://h.example/hook?code={REDACTED}&x=1",
        "payload": {
            "URL": f"https://h.example/?sig={REDACTED}",
            "note": "https://h.example/?sig=kept",
        },
        "calls": [{"url": f"https://h.example/?token={REDACTED}"}],
        "urls": ["https://h.example/?key=not-under-a-url-key"],
    }
    assert fields["url"] == "https://h.example/hook?code=k&x=1"  # input untouched


@pytest.mark.parametrize("value", [None, 7, ["https://h.example/?code=c"], {"a": 1}])
def test_a_url_key_that_is_not_a_string_is_left_alone(value: Any) -> None:
    assert redact_fields({"url": value}) == {"url": value}
