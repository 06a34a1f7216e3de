"""log.append: fields are held to the same rule as message, and an unstorable entry is final."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from delivery.prompts import FiringContext, PayloadRules, parse_payload, run_prompt
from delivery.prompts.log_append import LogAppendOutcome
from scheduling.settings import SchedulerSettings
from storage.job_log import JobLog
from storage.job_log.factory import UnconfiguredJobLog
from storage.job_log.table_store import TableJobLog
from tests.support.scheduler import Scheduler
from tests.support.services import unreachable_table_endpoint

RULES = PayloadRules(settings=SchedulerSettings(), vet_url=lambda url: None)
LONE_SURROGATE = "\ud800"  # what the JSON escape "\ud800" decodes to


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        pytest.param({"note": LONE_SURROGATE}, "fields['note']", id="value"),
        pytest.param({"a": {"b": ["ok", f"x{LONE_SURROGATE}"]}}, "fields['a']['b'][1]", id="deep"),
        pytest.param({f"k{LONE_SURROGATE}": 1}, "a key in fields", id="key"),
        pytest.param({"a": [{LONE_SURROGATE: 1}]}, "a key in fields['a'][0]", id="nested-key"),
    ],
)
def test_fields_with_text_that_is_not_unicode_are_refused(
    fields: dict[str, Any], where: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_payload("log.append", {"message": "m", "fields": fields}, RULES)
    [error] = raised.value.errors(include_input=False)
    assert error["loc"] == ("fields",)
    assert f"{where} is not valid Unicode text" in error["msg"]


def test_message_and_fields_follow_the_same_rule() -> None:
    with pytest.raises(ValidationError, match="message"):
        parse_payload("log.append", {"message": LONE_SURROGATE}, RULES)
    payload = parse_payload(
        "log.append", {"message": "m", "fields": {"emoji": "😀", "n": [1, 2.5, None, True]}}, RULES
    )
    assert payload.model_dump()["fields"] == {"emoji": "😀", "n": [1, 2.5, None, True]}


def test_an_unstorable_entry_accepted_earlier_fails_for_good(scheduler: Scheduler) -> None:
    # Accepted before fields were checked: the Table Storage log cannot encode the text, and
    # no retry can change that, so the outcome is final rather than retried into the ground.
    at = datetime(2026, 12, 1, tzinfo=UTC)
    context = FiringContext(
        transaction_id="tx-surrogate",
        exec_at=at,
        settings=scheduler.settings,
        job_log=scheduler.job_log,
        clock=lambda: at,
        open_http_client=lambda timeout: pytest.fail("log.append opens no HTTP client"),
    )
    outcome = run_prompt("log.append", {"message": "m", "fields": {"a": [LONE_SURROGATE]}}, context)
    assert isinstance(outcome, LogAppendOutcome)
    assert not outcome.ok
    assert outcome.retryable is False
    assert outcome.error is not None
    assert "fields['a'][0] is not valid Unicode text" in outcome.error
    assert scheduler.job_log.read("tx-surrogate", 10).entries == []


def test_a_log_store_that_cannot_be_opened_is_final_and_one_that_is_down_is_retried() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)

    def attempt(log: JobLog) -> LogAppendOutcome:
        context = FiringContext(
            transaction_id="tx-store",
            exec_at=at,
            settings=SchedulerSettings(),
            job_log=log,
            clock=lambda: at,
            open_http_client=lambda timeout: pytest.fail("log.append opens no HTTP client"),
        )
        outcome = run_prompt("log.append", {"message": "m"}, context)
        assert isinstance(outcome, LogAppendOutcome)
        return outcome

    unconfigured = attempt(UnconfiguredJobLog("no job log store is configured"))
    assert (unconfigured.ok, unconfigured.retryable) == (False, False)
    down = TableJobLog.open(unreachable_table_endpoint(), "joblog")
    try:
        outage = attempt(down)
    finally:
        down.close()
    assert (outage.ok, outage.retryable) == (False, True)
