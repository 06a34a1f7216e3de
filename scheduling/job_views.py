"""What the API shows of a job record: an allowlist of fields, never the sealed payload."""

from typing import Any

from scheduling.job_record import JobRecord

# In clear and safe to show: ids, schedule, state, and the payload's method and origin.
_LISTED = ("transaction_id", "state", "prompt_type", "exec_at", "attempts", "next_attempt_at")
_STATUS = (
    *_LISTED,
    "accepted_at",
    "updated_at",
    "fired_at",
    "retry",
    "destination",
    "last_outcome",
)


def listed_view(record: JobRecord) -> dict[str, Any]:
    """A job as one row of the listing."""
    return record.model_dump(mode="json", include=set(_LISTED))


def status_view(record: JobRecord) -> dict[str, Any]:
    """A job as its status shows it; `last_outcome` was redacted when it was stored."""
    return record.model_dump(mode="json", include=set(_STATUS))
