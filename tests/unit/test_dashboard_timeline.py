"""A job log entry's fields on the timeline: an outcome's gist as named values, the rest
folded away, every value capped."""

from dashboard.timeline import MAX_FIELDS, MAX_VALUE_CHARS, Shown, entry_fields


def test_an_http_outcome_leads_with_its_gist_and_folds_the_rest() -> None:
    outcome = {
        "ok": False,
        "status_code": 503,
        "elapsed_ms": 1234,
        "headers": {"Retry-After": "30", "Content-Type": "text/plain"},
        "body_excerpt": "",
        "body_truncated": False,
        "error": "target answered 503\nService Unavailable",
        "retryable": True,
        "retry_after_seconds": 30.0,
        "attempt": 2,
    }
    shown = entry_fields("outcome", outcome)
    assert shown.lead == [
        Shown("result", "failed", "failed"),
        Shown("HTTP status", "503"),
        Shown("error", "target answered 503 Service Unavailable"),
        Shown("took", "1.23 s"),
        Shown("Retry-After", "30 s"),
        Shown("attempt", "2"),
    ]
    # An empty excerpt and an untruncated body say nothing; a retryable failure does.
    assert shown.more == [
        Shown("header Retry-After", "30"),
        Shown("header Content-Type", "text/plain"),
        Shown("retryable", "true"),
    ]
    assert shown.left_out == 0


def test_a_log_append_outcome_is_ok_and_its_entry_id() -> None:
    shown = entry_fields("outcome", {"ok": True, "entry_id": "e-1", "attempt": 1})
    assert shown.lead == [Shown("result", "ok", "ok"), Shown("attempt", "1")]
    assert shown.more == [Shown("entry_id", "e-1")]


def test_other_entries_show_each_field_by_name_nested_values_as_json() -> None:
    shown = entry_fields(
        "log", {"rows": 42, "ratio": 0.5, "done": True, "who": None, "tags": ["a", "ü"]}
    )
    assert shown.lead == [
        Shown("rows", "42"),
        Shown("ratio", "0.5"),
        Shown("done", "true"),
        Shown("who", "null"),
        Shown("tags", '["a", "ü"]'),
    ]
    assert shown.more == []


def test_values_and_the_number_of_fields_are_capped() -> None:
    many = {f"f{i}": "x" * (MAX_VALUE_CHARS + 50) for i in range(MAX_FIELDS + 7)}
    shown = entry_fields("log", many)
    assert len(shown.lead) == MAX_FIELDS
    assert shown.left_out == 7
    assert all(len(item.value) == MAX_VALUE_CHARS for item in shown.lead)
    assert shown.lead[0].value.endswith("…")


def test_an_outcome_with_many_headers_is_capped_too() -> None:
    headers = {f"X-H{i}": "v" for i in range(MAX_FIELDS + 3)}
    shown = entry_fields("outcome", {"ok": True, "headers": headers, "attempt": 1})
    assert len(shown.more) == MAX_FIELDS
    assert shown.left_out == 3
