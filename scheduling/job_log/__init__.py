"""The job log: an append-only, per-job record of what happened and what the user logged."""

from scheduling.job_log.entries import JobLog, JobLogEntry, JobLogPage, LogKind

__all__ = ["JobLog", "JobLogEntry", "JobLogPage", "LogKind"]
