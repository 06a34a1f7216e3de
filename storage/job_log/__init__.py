"""The job log: an append-only, per-job record of what happened and what the user logged."""

from storage.job_log.entries import (
    InvalidCursor,
    JobLog,
    JobLogEntry,
    JobLogNotConfigured,
    JobLogPage,
    LogKind,
)

__all__ = ["InvalidCursor", "JobLog", "JobLogEntry", "JobLogNotConfigured", "JobLogPage", "LogKind"]
