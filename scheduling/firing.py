"""What happens when a job's time comes: run its prompt and record the lifecycle."""

from typing import Any

from scheduling.job_log import JobLogEntry, LogKind
from scheduling.job_log.entries import attempt_entry_id
from scheduling.job_log.resilient import append_with_retry
from scheduling.models import Job, JobResult
from scheduling.prompts import FiringContext, run_prompt


def fire_job(job: Job, context: FiringContext) -> JobResult:
    """Run one attempt of the job's prompt; the result is its outcome, whatever the target did."""
    fired_at = context.clock()
    attempt = context.attempt
    log_errors: list[str] = []

    def record(kind: LogKind, message: str, fields: dict[str, Any]) -> None:
        entry = JobLogEntry(
            transaction_id=job.transaction_id,
            entry_id=attempt_entry_id(kind, job.exec_at, attempt),
            timestamp=context.clock(),
            kind=kind,
            level="info" if kind != "outcome" or fields.get("ok") else "error",
            message=message,
            fields=fields,
        )
        error = append_with_retry(context.job_log, entry)
        if error is not None:
            log_errors.append(f"{kind} entry not stored: {error}")

    record("fired", f"{job.prompt_type} fired", {"attempt": attempt})
    try:
        outcome = run_prompt(job.prompt_type, job.payload, context).model_dump(mode="json")
    except Exception as error:  # a handler bug must still end the job with a visible outcome
        # Only the type: an exception's text can quote the payload, secrets included.
        outcome = {
            "ok": False,
            "error": f"internal error in {job.prompt_type} ({type(error).__name__})",
        }
    ok = bool(outcome.get("ok"))
    summary = "succeeded" if ok else f"failed: {outcome.get('error')}"
    record("outcome", f"{job.prompt_type} {summary}", {**outcome, "attempt": attempt})
    return JobResult(
        transaction_id=job.transaction_id,
        prompt_type=job.prompt_type,
        ok=ok,
        fired_at=fired_at,
        attempts=attempt,
        outcome=outcome,
        log_errors=log_errors,
    )


def cancelled_result(job: Job) -> JobResult:
    """The output of a job deleted or wiped before its first attempt."""
    return JobResult(
        transaction_id=job.transaction_id,
        prompt_type=job.prompt_type,
        ok=False,
        cancelled=True,
        outcome={"ok": False, "error": "the job was deleted or wiped before it fired"},
    )


def cancelled_after(last: JobResult) -> JobResult:
    """The output of a job deleted or wiped between attempts: the last attempt's outcome."""
    return last.model_copy(update={"cancelled": True})


def failed_result(job: Job, error: str, attempts: int) -> JobResult:
    """The output of a job whose prompt could not be run, after `attempts` attempts."""
    return JobResult(
        transaction_id=job.transaction_id,
        prompt_type=job.prompt_type,
        ok=False,
        attempts=attempts,
        outcome={"ok": False, "error": error},
    )
