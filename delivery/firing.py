"""What happens when a job's time comes: run its prompt, and the log entries of the attempt."""

from datetime import datetime
from typing import Any

from delivery.prompts import FiringContext, run_prompt
from storage.job_log import JobLogEntry, LogKind
from storage.job_log.entries import attempt_entry_id


def fire(prompt_type: str, payload: dict[str, Any], context: FiringContext) -> dict[str, Any]:
    """Run one attempt of the prompt; its outcome, whatever the target did (never raised)."""
    try:
        return run_prompt(prompt_type, payload, context).model_dump(mode="json")
    except Exception as error:  # a handler bug must still end the attempt with an outcome
        # Only the type: an exception's text can quote the payload, secrets included.
        return {"ok": False, "error": f"internal error in {prompt_type} ({type(error).__name__})"}


def attempt_entries(
    prompt_type: str, fired_at: datetime, outcome: dict[str, Any], context: FiringContext
) -> list[JobLogEntry]:
    """The attempt's lines in the job log: `fired` (at its claim's time) and its outcome.

    Their ids come from the run and the attempt, so a re-run attempt rewrites them.
    """
    attempt = context.attempt

    def entry(kind: LogKind, at: datetime, message: str, fields: dict[str, Any]) -> JobLogEntry:
        return JobLogEntry(
            transaction_id=context.transaction_id,
            entry_id=attempt_entry_id(kind, context.exec_at, attempt),
            timestamp=at,
            kind=kind,
            level="info" if kind != "outcome" or fields.get("ok") else "error",
            message=message,
            fields=fields,
        )

    summary = "succeeded" if outcome.get("ok") else f"failed: {outcome.get('error')}"
    return [
        entry("fired", fired_at, f"{prompt_type} fired", {"attempt": attempt}),
        entry(
            "outcome",
            context.clock(),
            f"{prompt_type} {summary}",
            {**outcome, "attempt": attempt},
        ),
    ]
