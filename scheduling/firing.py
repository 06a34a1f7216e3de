"""What happens when a job's time comes: run its prompt and log the attempt."""

from typing import Any

from scheduling.job_log import JobLogEntry, LogKind
from scheduling.job_log.entries import attempt_entry_id
from scheduling.job_log.resilient import append_with_retry
from scheduling.prompts import FiringContext, run_prompt


def fire(prompt_type: str, payload: dict[str, Any], context: FiringContext) -> dict[str, Any]:
    """Run one attempt of the prompt; its outcome, whatever the target did (never raised)."""
    attempt = context.attempt
    log_errors: list[str] = []

    def record(kind: LogKind, message: str, fields: dict[str, Any]) -> None:
        entry = JobLogEntry(
            transaction_id=context.transaction_id,
            entry_id=attempt_entry_id(kind, context.exec_at, attempt),
            timestamp=context.clock(),
            kind=kind,
            level="info" if kind != "outcome" or fields.get("ok") else "error",
            message=message,
            fields=fields,
        )
        error = append_with_retry(context.job_log, entry)
        if error is not None:
            log_errors.append(f"{kind} entry not stored: {error}")

    record("fired", f"{prompt_type} fired", {"attempt": attempt})
    try:
        outcome = run_prompt(prompt_type, payload, context).model_dump(mode="json")
    except Exception as error:  # a handler bug must still end the attempt with an outcome
        # Only the type: an exception's text can quote the payload, secrets included.
        outcome = {
            "ok": False,
            "error": f"internal error in {prompt_type} ({type(error).__name__})",
        }
    summary = "succeeded" if outcome.get("ok") else f"failed: {outcome.get('error')}"
    record("outcome", f"{prompt_type} {summary}", {**outcome, "attempt": attempt})
    return {**outcome, "log_errors": log_errors} if log_errors else outcome
