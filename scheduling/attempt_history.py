"""A job's recent attempts, each with when it was due, when it fired and how it ended.

Kept on the job record and written by the very compare-and-swaps that claim and finish an
attempt, so it costs no store round trip of its own. Only the gist of each outcome is kept
(ok, status code, the already redacted error text): never the payload or what the target
answered beyond that.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from scheduling.models import UtcDatetime

# The history is part of the record, read with it on every listing: a bounded tail.
MAX_ATTEMPT_HISTORY = 20
# An error is one line of redacted text; the whole of the last one is in `last_outcome`.
MAX_ERROR_LENGTH = 300


class AttemptSummary(BaseModel):
    """One attempt: `due_at` is when this attempt was due (the run's time for its first
    attempt, the retry's time for later ones), `lateness_ms` how long after that it fired."""

    model_config = ConfigDict(frozen=True)

    attempt: int = Field(ge=1)
    due_at: UtcDatetime
    fired_at: UtcDatetime
    lateness_ms: int
    finished_at: UtcDatetime | None = None
    ok: bool | None = None
    status_code: int | None = None
    error: str | None = None


def lateness_ms(due_at: datetime, fired_at: datetime) -> int:
    """Milliseconds from due to fired; negative would mean it fired early (it never should)."""
    return round((fired_at - due_at).total_seconds() * 1000)


def with_started(
    history: list[AttemptSummary], attempt: int, due_at: datetime, fired_at: datetime
) -> list[AttemptSummary]:
    """The history once attempt `attempt` has been claimed, at most MAX_ATTEMPT_HISTORY long."""
    started = AttemptSummary(
        attempt=attempt,
        due_at=due_at,
        fired_at=fired_at,
        lateness_ms=lateness_ms(due_at, fired_at),
    )
    return [*history, started][-MAX_ATTEMPT_HISTORY:]


def with_finished(
    history: list[AttemptSummary], attempt: int, outcome: dict[str, object], finished_at: datetime
) -> list[AttemptSummary]:
    """The history with the outcome's gist on the newest entry of attempt `attempt` (a record
    written before the history existed has none: it is left as it is)."""
    if not history or history[-1].attempt != attempt:
        return history
    status_code = outcome.get("status_code")
    error = outcome.get("error")
    finished = history[-1].model_copy(
        update={
            "finished_at": finished_at,
            "ok": bool(outcome.get("ok")),
            "status_code": status_code if isinstance(status_code, int) else None,
            "error": one_line(error) if isinstance(error, str) and error else None,
        }
    )
    return [*history[:-1], finished]


def one_line(text: str) -> str:
    """The text on one line, at most MAX_ERROR_LENGTH characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_ERROR_LENGTH else flat[: MAX_ERROR_LENGTH - 1] + "…"
