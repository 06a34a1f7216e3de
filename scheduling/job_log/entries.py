"""What a job log entry is, and the interface every log store implements."""

from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, Field

LogKind = Literal["accepted", "fired", "outcome", "cancelled", "wiped", "log", "log_store_error"]


class JobLogEntry(BaseModel):
    """One line of a job's log; `entry_id` is unique within the job and sorts in time order."""

    transaction_id: str
    entry_id: str
    timestamp: AwareDatetime
    kind: LogKind
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    message: str = ""
    fields: dict[str, Any] = Field(default_factory=dict)


class JobLogPage(BaseModel):
    entries: list[JobLogEntry]
    next_cursor: str | None = None


class JobLog(Protocol):
    """A log store. Implementations are safe to share across threads of one worker process."""

    def append(self, entry: JobLogEntry) -> None:
        """Store the entry; appending the same `entry_id` twice stores it once."""
        ...

    def read(self, transaction_id: str, limit: int, cursor: str | None = None) -> JobLogPage:
        """One page of a job's entries in time order; `cursor` comes from the previous page."""
        ...


def make_entry_id(timestamp: datetime, unique: str) -> str:
    """An id that sorts by time first (fixed-width UTC stamp), then by a caller-chosen suffix."""
    return f"{timestamp.strftime('%Y%m%dT%H%M%S.%fZ')}-{unique}"
