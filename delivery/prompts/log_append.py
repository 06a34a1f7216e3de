"""`log.append`: write the user's entry to the job log."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from delivery.prompts.context import FiringContext, PayloadRules
from storage.job_log import JobLogEntry
from storage.job_log.entries import attempt_entry_id
from storage.job_log.resilient import append_with_retry

# A path is shown only for the failing value, each key cut to this length.
_MAX_KEY_SHOWN = 32


class LogAppendPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    message: str = Field(min_length=1, max_length=8192)
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    fields: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _storable_fields(cls, fields: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Create time only: a job accepted before this check gets a final failed outcome
        # from run_log_append instead of a validation error at fire time.
        rules = info.context.get("rules") if isinstance(info.context, dict) else None
        if isinstance(rules, PayloadRules) and (why := unstorable_text(fields)):
            raise ValueError(why)
        return fields


class LogAppendOutcome(BaseModel):
    ok: bool
    entry_id: str | None = None
    error: str | None = None
    retryable: bool = False


def unstorable_text(fields: dict[str, Any]) -> str | None:
    """Why `fields` cannot be stored (a key or string that is not valid Unicode), or None.

    `message` gets the same rule from pydantic; JSON's `\\ud800` escapes decode to lone
    surrogates, which no store can encode. Linear in the size of `fields`, no recursion.
    """
    # (value, parent link): the path is spelled out only for the value that fails.
    pending: list[tuple[Any, tuple[Any, ...] | None]] = [(fields, None)]
    while pending:
        value, link = pending.pop()
        if isinstance(value, str) and not _is_unicode(value):
            return f"{_path(link)} is not valid Unicode text (it holds a lone surrogate)"
        if isinstance(value, dict):
            for key, child in value.items():
                if isinstance(key, str) and not _is_unicode(key):
                    return f"a key in {_path(link)} is not valid Unicode text"
                pending.append((child, (key, link)))
        elif isinstance(value, list):
            pending.extend((child, (index, link)) for index, child in enumerate(value))
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path(link: tuple[Any, ...] | None) -> str:
    steps: list[str] = []
    while link is not None:
        key, link = link
        if isinstance(key, int):
            steps.append(f"[{key}]")
        else:
            shown = key if len(key) <= _MAX_KEY_SHOWN else key[:_MAX_KEY_SHOWN] + "…"
            steps.append(f"[{shown.encode('utf-8', 'backslashreplace').decode()!r}]")
    return "fields" + "".join(reversed(steps))


def run_log_append(payload: LogAppendPayload, context: FiringContext) -> LogAppendOutcome:
    entry_id = attempt_entry_id("log", context.exec_at, context.attempt)
    if why := unstorable_text(payload.fields):
        # Every store would refuse it the same way: retrying cannot help.
        return LogAppendOutcome(ok=False, error=f"the entry cannot be stored: {why}")
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
        # A store that is down may come back; a missing configuration or a refused entry not.
        return LogAppendOutcome(
            ok=False, error=f"job log store failed: {error}", retryable=not error.permanent
        )
    return LogAppendOutcome(ok=True, entry_id=entry_id)
