"""`log.append`: write the user's entry to the job log."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduling.job_log import JobLogEntry
from scheduling.job_log.entries import attempt_entry_id
from scheduling.job_log.resilient import append_with_retry
from scheduling.prompts.context import FiringContext


class LogAppendPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=8192)
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    fields: dict[str, Any] = Field(default_factory=dict)


class LogAppendOutcome(BaseModel):
    ok: bool
    entry_id: str | None = None
    error: str | None = None
    retryable: bool = False


def run_log_append(payload: LogAppendPayload, context: FiringContext) -> LogAppendOutcome:
    entry_id = attempt_entry_id("log", context.exec_at, context.attempt)
    entry = JobLogEntry(
        transaction_id=context.transaction_id,
        entry_id=entry_id,
        timestamp=context.clock(),
        kind="log",
        level=payload.level,
        message=payload.message,
        fields=payload.fields,
    )
    error = append_with_retry(context.job_log, entry)
    if error is not None:
        return LogAppendOutcome(ok=False, error=f"job log store failed: {error}", retryable=True)
    return LogAppendOutcome(ok=True, entry_id=entry_id)
