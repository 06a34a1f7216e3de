"""A job log kept in memory: the JobLog protocol for tests that do not exercise a store."""

import threading

from storage.job_log import JobLogEntry, JobLogPage


class MemoryJobLog:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], JobLogEntry] = {}
        self._lock = threading.Lock()

    def append(self, entry: JobLogEntry) -> None:
        with self._lock:
            self._entries[(entry.transaction_id, entry.entry_id)] = entry

    def read(self, transaction_id: str, limit: int, cursor: str | None = None) -> JobLogPage:
        with self._lock:
            entries = sorted(
                (entry for (job, _), entry in self._entries.items() if job == transaction_id),
                key=lambda entry: entry.entry_id,
            )
        if cursor is not None:
            entries = [entry for entry in entries if entry.entry_id > cursor]
        page = entries[:limit]
        more = len(entries) > limit
        return JobLogPage(entries=page, next_cursor=page[-1].entry_id if more else None)
