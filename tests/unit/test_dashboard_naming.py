"""How the dashboard names a job: its labels as key=value chips beside its short id, or its
kind (and an http.call's host) when it has none; never anything of its sealed payload."""

from dashboard.naming import (
    MAX_CHIP_CHARS,
    MAX_CHIPS,
    host_of,
    job_name,
    short_id,
)

JOB_ID = "3f0c2a57-8d4e-4c1b-9a6f-0b1c2d3e4f50"


def test_a_labelled_job_is_named_by_its_labels_in_their_order() -> None:
    name = job_name(JOB_ID, "http.call", "POST https://hooks.example.com", {"a": "1", "b": "2"})
    assert name.chips == ["a=1", "b=2"]
    assert name.short_id == "3f0c2a57…"
    assert name.transaction_id == JOB_ID
    # The labels say what the job is: its kind and host are not repeated beside them.
    assert (name.kind, name.host) == (None, None)


def test_an_unlabelled_job_is_named_by_its_kind_and_an_http_calls_host() -> None:
    no_labels: tuple[dict[str, str] | None, ...] = (None, {})
    for labels in no_labels:
        name = job_name(JOB_ID, "http.call", "POST https://hooks.example.com:8443", labels)
        assert (name.chips, name.kind, name.host) == ([], "http.call", "hooks.example.com:8443")
    name = job_name(JOB_ID, "log.append", None, {})
    assert (name.kind, name.host) == ("log.append", None)


def test_the_host_is_read_from_the_destination_only() -> None:
    assert host_of("GET http://[::1]:8080") == "[::1]:8080"
    assert host_of("POST https://hooks.example.com") == "hooks.example.com"
    for nothing in (None, "", "POST", "POST https://"):
        assert host_of(nothing) is None


def test_a_short_id_is_the_first_group_of_a_uuid_and_a_short_id_is_kept_whole() -> None:
    assert short_id(JOB_ID) == "3f0c2a57…"
    assert short_id("job-42") == "job-42"
    assert short_id("123456789") == "123456789"  # no shorter with an ellipsis


def test_labels_beyond_what_the_api_allows_are_capped() -> None:
    many = {f"k{i}": "v" * 200 for i in range(MAX_CHIPS + 5)}
    name = job_name(JOB_ID, "log.append", None, many)
    assert len(name.chips) == MAX_CHIPS
    assert all(len(chip) == MAX_CHIP_CHARS and chip.endswith("…") for chip in name.chips)
    # The longest pair the API accepts (63 + 1 + 63 characters) is shown whole.
    longest = {"k" * 63: "v" * 63}
    assert job_name(JOB_ID, "log.append", None, longest).chips == ["k" * 63 + "=" + "v" * 63]
