"""The Durable Scheduler's HTTP API from Python.

    from scheduler_client import SchedulerClient, ScheduleRequest

    with SchedulerClient("http://127.0.0.1:7071", key="...") as client:
        accepted = client.schedule(ScheduleRequest(cron="0 9 * * MON-FRI", ...))
        print(client.status(accepted.transaction_id).state)

Each method sends one request and returns the answer as its model; an error answer raises
an ApiError (NotFound for a 404, ServerError for a 5xx) with the API's problem document,
and no answer at all raises Unreachable. `SchedulerClient.send` is the same call without
the parsing: it returns the API's answer as sent (what `scheduler --json` prints).
"""

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from scheduler_client.config import is_loopback
from scheduler_client.errors import UnexpectedAnswer, Unreachable, api_error
from scheduler_client.models import (
    AcceptedJob,
    BatchItem,
    BatchOutcome,
    BatchRequest,
    CancelOutcome,
    CancelQuery,
    DeletedJob,
    FailedListQuery,
    FailedPage,
    FireTimes,
    JobListQuery,
    JobLogEntry,
    JobLogPage,
    JobLogQuery,
    JobPage,
    JobStatus,
    JobStatusAnswer,
    JobStatusQuery,
    ListedJob,
    PreviewQuery,
    Problem,
    ScheduleRequest,
    UnreadableJob,
)

__all__ = ["OPERATIONS", "Operation", "SchedulerClient"]

Model = TypeVar("Model", bound=BaseModel)
_JOB = "/api/schedule/{transaction_id}"
# The API's pages are bounded (500 jobs, 1,000 log entries); an answer far larger than any
# of them is not the API's, and is not read to the end.
MAX_ANSWER_BYTES = 32 << 20
KEY_HEADER = "x-functions-key"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Operation:
    """One route the client calls, as the app's OpenAPI document names it (operationId);
    tests/live/test_cli_contract.py checks each against the running app's document."""

    operation_id: str
    method: str
    path: str
    status: int
    answer: type[BaseModel]
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None


OPERATIONS: Mapping[str, Operation] = {
    operation.operation_id: operation
    for operation in (
        Operation("create_job", "POST", "/api/schedule", 202, AcceptedJob, body=ScheduleRequest),
        Operation("list_jobs", "GET", "/api/schedule", 200, JobPage, query=JobListQuery),
        Operation(
            "preview_schedule", "GET", "/api/schedule/preview", 200, FireTimes, query=PreviewQuery
        ),
        Operation(
            "job_status", "GET", f"{_JOB}/status", 200, JobStatusAnswer, query=JobStatusQuery
        ),
        Operation("job_log", "GET", f"{_JOB}/logs", 200, JobLogPage, query=JobLogQuery),
        Operation("delete_job", "DELETE", _JOB, 200, DeletedJob),
        Operation("pause_job", "POST", f"{_JOB}/pause", 200, JobStatus),
        Operation("resume_job", "POST", f"{_JOB}/resume", 200, JobStatus),
        Operation("replay_job", "POST", f"{_JOB}/replay", 202, JobStatus),
        Operation("list_failed", "GET", "/api/failed", 200, FailedPage, query=FailedListQuery),
        Operation(
            "create_batch", "POST", "/api/schedule/batch", 200, BatchOutcome, body=BatchRequest
        ),
        Operation("cancel_jobs", "DELETE", "/api/schedule", 200, CancelOutcome, query=CancelQuery),
    )
}


class SchedulerClient:
    """A client of one app. `base_url` is the app's origin (`http://127.0.0.1:7071`, `https://
    <app>.azurewebsites.net`); `key` a function key, sent as `x-functions-key`."""

    def __init__(
        self,
        base_url: str,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json, application/problem+json"}
        if key:
            headers[KEY_HEADER] = key
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
            # A proxy from the environment could route a loopback address elsewhere.
            trust_env=not is_loopback(base_url),
        )

    def __enter__(self) -> "SchedulerClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- the routes, answers parsed ------------------------------------------------------

    def schedule(
        self, request: ScheduleRequest, *, idempotency_key: str | None = None
    ) -> AcceptedJob:
        """POST /api/schedule: 202, the job accepted (or, with the same Idempotency-Key and
        request, the job accepted before)."""
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        return self._parsed("create_job", AcceptedJob, body=request, headers=headers)

    def list_jobs(self, **query: Any) -> JobPage:
        """GET /api/schedule: one page of live jobs (JobListQuery's fields as keywords)."""
        return self._parsed("list_jobs", JobPage, query=JobListQuery(**query))

    def iter_jobs(self, **query: Any) -> Iterator[ListedJob | UnreadableJob]:
        """Every live job matching `query`, page after page."""
        cursor = query.pop("cursor", None)
        while True:
            page = self.list_jobs(**query, cursor=cursor)
            yield from page.jobs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def status(self, transaction_id: str, *, history: bool = False) -> JobStatus | UnreadableJob:
        """GET …/status: the job, or what can be said of it when its record cannot be read."""
        answer = self._parsed(
            "job_status",
            JobStatusAnswer,
            transaction_id=transaction_id,
            query=JobStatusQuery(history=history),
        )
        return answer.root

    def logs(
        self, transaction_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> JobLogPage:
        """GET …/logs: one page of the job's log, in time order."""
        return self._parsed(
            "job_log",
            JobLogPage,
            transaction_id=transaction_id,
            query=JobLogQuery(limit=limit, cursor=cursor),
        )

    def iter_logs(self, transaction_id: str, *, limit: int = 100) -> Iterator[JobLogEntry]:
        """The whole log of the job, page after page."""
        cursor = None
        while True:
            page = self.logs(transaction_id, limit=limit, cursor=cursor)
            yield from page.entries
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def cancel(self, transaction_id: str) -> DeletedJob:
        """DELETE /api/schedule/{id}: cancel a pending job, or delete an ended job's record."""
        return self._parsed("delete_job", DeletedJob, transaction_id=transaction_id)

    def pause(self, transaction_id: str) -> JobStatus:
        return self._parsed("pause_job", JobStatus, transaction_id=transaction_id)

    def resume(self, transaction_id: str) -> JobStatus:
        return self._parsed("resume_job", JobStatus, transaction_id=transaction_id)

    def replay(self, transaction_id: str) -> JobStatus:
        """POST …/replay: run a failed job again, now."""
        return self._parsed("replay_job", JobStatus, transaction_id=transaction_id)

    def failed(self, **query: Any) -> FailedPage:
        """GET /api/failed: one page of failed jobs (FailedListQuery's fields as keywords)."""
        return self._parsed("list_failed", FailedPage, query=FailedListQuery(**query))

    def preview(self, cron: str, **query: Any) -> FireTimes:
        """GET /api/schedule/preview: the next fire times of a cron schedule."""
        return self._parsed("preview_schedule", FireTimes, query=PreviewQuery(cron=cron, **query))

    def schedule_batch(self, jobs: list[BatchItem]) -> BatchOutcome:
        """POST /api/schedule/batch: up to 1,000 jobs, one result each, in order."""
        return self._parsed("create_batch", BatchOutcome, body=BatchRequest(jobs=jobs))

    def cancel_matching(self, **query: Any) -> CancelOutcome:
        """DELETE /api/schedule?label=…: one bounded call; `next_cursor` to go on."""
        return self._parsed("cancel_jobs", CancelOutcome, query=CancelQuery.model_validate(query))

    # --- the routes, answers as sent -----------------------------------------------------

    def send(
        self,
        operation_id: str,
        *,
        transaction_id: str | None = None,
        query: BaseModel | None = None,
        body: BaseModel | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Call one operation; its success status and its answer as sent (decoded JSON).
        Raises ApiError for an error status, Unreachable when there is no answer."""
        operation = OPERATIONS[operation_id]
        path = operation.path
        if transaction_id is not None:
            path = path.format(transaction_id=transaction_id)
        request = self._http.build_request(
            operation.method,
            path,
            params=_query_params(query) if query is not None else None,
            content=body.model_dump_json(by_alias=True, exclude_unset=True) if body else None,
            headers={
                **({"Content-Type": "application/json"} if body is not None else {}),
                **(headers or {}),
            },
        )
        try:
            response = self._http.send(request, stream=True)
            try:
                raw = _read_capped(response)
            finally:
                response.close()
        except httpx.TransportError as error:
            raise Unreachable(f"{operation.method} {request.url}: {_reason(error)}") from None
        if response.is_success:
            try:
                return response.status_code, json.loads(raw)
            except ValueError:
                raise UnexpectedAnswer(
                    f"{operation.method} {request.url} answered {response.status_code} "
                    "with a body that is not JSON"
                ) from None
        raise api_error(response.status_code, _problem(response, raw), raw)

    def _parsed(self, operation_id: str, model: type[Model], **arguments: Any) -> Model:
        _, answer = self.send(operation_id, **arguments)
        return parse_answer(model, answer)


def parse_answer(model: type[Model], answer: Any) -> Model:
    """An answer as its model; UnexpectedAnswer when it is not one."""
    try:
        return model.model_validate(answer)
    except ValidationError as error:
        raise UnexpectedAnswer(
            f"the answer is not a {model.__name__}: {error.errors()[0]['msg']}"
        ) from None


def _query_params(query: BaseModel) -> dict[str, str | list[str]]:
    params: dict[str, str | list[str]] = {}
    for name, value in query.model_dump(by_alias=True, exclude_none=True).items():
        if isinstance(value, list):  # a repeated parameter (label=…&label=…)
            params[name] = [str(item) for item in value]
        elif isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            params[name] = value.isoformat()
        else:
            params[name] = str(value)
    return params


def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise UnexpectedAnswer(
                f"the answer is larger than {MAX_ANSWER_BYTES} bytes: not the scheduler's API"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _problem(response: httpx.Response, raw: bytes) -> Problem | None:
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("application/problem+json", "application/json"):
        return None
    try:
        return Problem.model_validate_json(raw)
    except ValidationError:
        return None


def _reason(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error})" if str(error) else "cannot connect"
    return str(error) or type(error).__name__
