"""Appending to the job log without ever failing the job: bounded retries, then the error text."""

import logging
import time
from collections.abc import Callable

from storage.job_log.entries import JobLog, JobLogEntry, JobLogNotConfigured

logger = logging.getLogger(__name__)

# Retrying cannot fix a bad entry or a missing configuration: report those at once.
_PERMANENT_ERRORS = (ValueError, TypeError, JobLogNotConfigured)
_MAX_ERROR_CHARS = 500


class AppendError(str):
    """Why an entry was not stored (the text), and whether no retry could ever store it."""

    permanent: bool

    def __new__(cls, text: str, *, permanent: bool) -> "AppendError":
        error = super().__new__(cls, text)
        error.permanent = permanent
        return error


def default_backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): 0.2, 0.4, 0.8, ... 2."""
    return float(min(0.2 * 2 ** (attempt - 1), 2.0))


def describe_error(error: BaseException) -> str:
    """A one-line, bounded description of a store error, for a job's status."""
    text = " ".join(str(error).split()) or repr(error)
    text = f"{type(error).__name__}: {text}"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def append_with_retry(
    log: JobLog,
    entry: JobLogEntry,
    attempts: int = 3,
    backoff: Callable[[int], float] = default_backoff,
    sleep: Callable[[float], None] = time.sleep,
) -> AppendError | None:
    """Append `entry`, trying up to `attempts` times; None when stored, else why not."""
    attempt = 1
    while True:
        try:
            log.append(entry)
            return None
        except _PERMANENT_ERRORS as error:
            return _given_up(entry, attempt, error, permanent=True)
        except Exception as error:  # any store outage: the job goes on without this entry
            if attempt >= attempts:
                return _given_up(entry, attempt, error, permanent=False)
            logger.info("job log append failed (attempt %d of %d): %r", attempt, attempts, error)
        sleep(backoff(attempt))
        attempt += 1


def _given_up(
    entry: JobLogEntry, attempts: int, error: Exception, *, permanent: bool
) -> AppendError:
    text = describe_error(error)
    logger.warning(
        "job log entry %s of %s not stored after %d attempt(s): %s",
        entry.entry_id,
        entry.transaction_id,
        attempts,
        text,
    )
    return AppendError(
        f"{text} (after {attempts} attempt{'s' if attempts != 1 else ''})", permanent=permanent
    )
