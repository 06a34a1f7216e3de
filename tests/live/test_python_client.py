"""The Python client (scheduler_client.SchedulerClient) against the local durable host: each
method's answer as its model, and each failure as the error docs/cli.md names."""

import time
import uuid

import pytest
from scheduler_client import (
    AcceptedJob,
    ApiError,
    ExitCode,
    HttpCallPayload,
    JobStatus,
    LogAppendPayload,
    NotFound,
    SchedulerClient,
    ScheduleRequest,
    Unreachable,
)

# Fixtures: the app as run-local.sh configures it, and `scheduler receive` running.
from tests.support.cli import CliHost, Running
from tests.support.cli import cli_host as cli_host
from tests.support.cli import receiving as receiving
from tests.support.local_servers import free_port

pytestmark = pytest.mark.live


def log_job(message: str, **when: object) -> ScheduleRequest:
    payload = LogAppendPayload(message=message).model_dump(exclude_unset=True)
    return ScheduleRequest.model_validate({"prompt_type": "log.append", "payload": payload, **when})


def until_ended(client: SchedulerClient, transaction_id: str) -> JobStatus:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.status(transaction_id)
        assert isinstance(status, JobStatus)
        if status.state in ("succeeded", "failed", "cancelled"):
            return status
        time.sleep(0.3)
    pytest.fail(f"{transaction_id} did not end")


def test_each_method_answers_its_model(cli_host: CliHost, receiving: tuple[str, Running]) -> None:
    url, receiver = receiving
    with SchedulerClient(cli_host.base_url, cli_host.function_key) as client:
        call = HttpCallPayload(url=f"{url}/from-python", json_body={"n": 1})
        request = ScheduleRequest(
            delay="2s",
            prompt_type="http.call",
            payload=call.model_dump(by_alias=True, exclude_unset=True),
        )
        key = f"python-{uuid.uuid4()}"
        accepted = client.schedule(request, idempotency_key=key)
        assert isinstance(accepted, AcceptedJob)
        # The same key and request: the same job, never a second one.
        assert client.schedule(request, idempotency_key=key).transaction_id == (
            accepted.transaction_id
        )
        listed = {job.transaction_id for job in client.iter_jobs(limit=1)}
        assert accepted.transaction_id in listed

        ended = until_ended(client, accepted.transaction_id)
        assert ended.state == "succeeded"
        assert ended.last_outcome is not None
        assert ended.last_outcome["status_code"] == 204
        assert '"path": "/from-python"' in receiver.next_line()
        kinds = [entry.kind for entry in client.iter_logs(accepted.transaction_id, limit=1)]
        assert kinds[:2] == ["accepted", "fired"]
        assert "outcome" in kinds

        recurring = client.schedule(log_job("weekly", cron="0 9 * * MON"))
        fire_times = client.preview("0 9 * * MON", count=2).fire_times
        assert recurring.next_fire_at == fire_times[0]
        assert client.pause(recurring.transaction_id).state == "paused"
        assert client.resume(recurring.transaction_id).state == "pending"
        cancelled = client.cancel(recurring.transaction_id)
        assert (cancelled.deleted, cancelled.state_before) == (True, "pending")

        failing = client.schedule(
            ScheduleRequest(
                delay="1s",
                prompt_type="http.call",
                payload={"url": f"http://127.0.0.1:{free_port()}/closed"},
            )
        )
        assert until_ended(client, failing.transaction_id).state == "failed"
        failed_ids = {job.transaction_id for job in client.failed(limit=500).jobs}
        assert failing.transaction_id in failed_ids
        assert client.replay(failing.transaction_id).transaction_id == failing.transaction_id


def test_failures_raise_the_documented_errors(cli_host: CliHost) -> None:
    with SchedulerClient(cli_host.base_url, cli_host.function_key) as client:
        with pytest.raises(NotFound) as missing:
            client.status(str(uuid.uuid4()))
        assert missing.value.exit_code is ExitCode.NOT_FOUND
        assert missing.value.problem is not None
        assert missing.value.problem.status == 404

        with pytest.raises(ApiError) as invalid:
            client.schedule(log_job("too late", exec_at="2020-01-01T00:00:00Z"))
        assert invalid.value.status == 422
        assert invalid.value.problem is not None
        assert [error.loc[-1] for error in invalid.value.problem.errors] == ["exec_at"]

    with SchedulerClient(cli_host.base_url, "wrong-key") as client:
        with pytest.raises(ApiError) as refused:
            client.list_jobs()
        assert refused.value.status == 401
        assert refused.value.exit_code is ExitCode.REFUSED

    with SchedulerClient(f"http://127.0.0.1:{free_port()}", timeout=5) as client:
        with pytest.raises(Unreachable) as unreachable:
            client.list_jobs()
        assert unreachable.value.exit_code is ExitCode.UNAVAILABLE
