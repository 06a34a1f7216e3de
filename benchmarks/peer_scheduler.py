"""The peer the burst benchmark compares us with: APScheduler 3.11, set up as a Python developer
would to fire the same calls at their time and keep them across restarts.

- its SQLAlchemy job store on a SQLite file (jobs survive a restart, as ours do);
- a ThreadPoolExecutor of 8 threads (the local host runs 8 activity threads);
- each job one POST with a small JSON body, through ONE httpx.Client shared by every job,
  configured as our http.call client is (`reused_http_client`);
- no misfire grace limit: a job that comes due while the threads are busy still runs, late
  (APScheduler's default of 1 s would silently skip most of a burst).

It guarantees far less than we do (no compare-and-swap claim, no retries, no outcome record,
no signature, no egress vetting): the figure is a bar to measure our drain against, not a
like-for-like contest.
"""

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from delivery.egress import transport
from delivery.prompts.http_call import TRANSACTION_HEADER
from scheduling.settings import SchedulerSettings

PEER_THREADS = 8


def reused_http_client() -> httpx.Client:
    """One client for every call, with our http.call client's settings
    (delivery/egress/transport.py, `pinned_client` and `PinnedTransport`): the default
    http.call timeout, the same connection limits, a CA-verifying TLS context built once, no
    environment proxies or .netrc, no redirects. Unlike ours (a client per attempt, its
    deadline counted from the attempt's start), it is made once and keeps connections alive."""
    timeout = SchedulerSettings.model_fields["http_call_default_timeout_seconds"].default
    return httpx.Client(
        verify=httpx.create_ssl_context(verify=True, trust_env=False),
        timeout=timeout,
        limits=transport._DEFAULT_LIMITS,
        trust_env=False,
        follow_redirects=False,
    )


# The job function is stored by reference ("module:name") in the job store, so the client it
# uses is this module's: set by PeerScheduler while it runs.
_client: httpx.Client | None = None
_client_lock = threading.Lock()


def call_receiver(url: str, job_id: str, number: int) -> None:
    """One peer job: the POST an http.call job makes (a small JSON body), its id in a header."""
    client = _client
    if client is None:
        raise RuntimeError("no PeerScheduler is running")
    client.post(url, json={"n": number}, headers={TRANSACTION_HEADER: job_id}).raise_for_status()


class PeerScheduler:
    """APScheduler on a SQLite file, started on construction; `close()` stops it, waiting for
    running jobs."""

    def __init__(self, database: Path, threads: int = PEER_THREADS) -> None:
        global _client
        with _client_lock:
            if _client is not None:
                raise RuntimeError("one PeerScheduler at a time")
            _client = reused_http_client()
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{database}")},
            executors={"default": ThreadPoolExecutor(threads)},
            job_defaults={"misfire_grace_time": None, "coalesce": False},
            timezone=UTC,
        )
        self.scheduler.start()

    def add(self, url: str, instant: datetime, count: int) -> list[str]:
        """`count` one-off jobs due at `instant`, added one after another; their ids."""
        ids = []
        for number in range(count):
            job_id = str(uuid.uuid4())
            self.scheduler.add_job(
                call_receiver,
                trigger="date",
                run_date=instant,
                args=[url, job_id, number],
                id=job_id,
            )
            ids.append(job_id)
        return ids

    def stored_jobs(self) -> int:
        """Jobs still in the store: a one-off job leaves it once it has been handed to a
        thread (APScheduler's bookkeeping of a run)."""
        return len(self.scheduler.get_jobs())

    def close(self) -> None:
        global _client
        try:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
        finally:
            with _client_lock:
                if _client is not None:
                    _client.close()
                _client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
