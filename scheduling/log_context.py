"""The transaction id on every log record made while a job is being handled.

A context variable holds the job's id (per thread and per asyncio task); the log record
factory copies it onto each record as `transaction_id`, where every handler sees it: the
Functions worker's, and OpenTelemetry's (which exports it as a log attribute, in Azure a
customDimensions entry of the traces table).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_job: ContextVar[str | None] = ContextVar("transaction_id", default=None)
_installed = False


def install() -> None:
    """Wrap the log record factory once per process (idempotent)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def with_job(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.transaction_id = _job.get()
        return record

    logging.setLogRecordFactory(with_job)
    _installed = True


def name_job(transaction_id: str) -> None:
    """From here on in this task or thread, log records carry this job's id."""
    install()
    _job.set(transaction_id)


@contextmanager
def about_job(transaction_id: str) -> Iterator[None]:
    """Log records made inside the block carry this job's id."""
    install()
    token = _job.set(transaction_id)
    try:
        yield
    finally:
        _job.reset(token)
