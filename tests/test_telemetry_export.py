"""The exporters the app configures on first use, each in a fresh process: the Azure Monitor
distro against a loopback stand-in for Application Insights' ingestion endpoint, and the
console exporter. Real SDKs and exporters; only the endpoint is local."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

REPO_ROOT = Path(__file__).resolve().parents[1]
# One job's metric and log line, then a flush, as a worker does over its life.
SCRIPT = """
import logging, os
import httpx
from opentelemetry import metrics, _logs
from blueprints.telemetry import configure_once
from scheduling.log_context import about_job
from scheduling.metrics import job_attributes, job_metrics

configure_once()
logging.getLogger().setLevel(logging.INFO)
job_metrics().accepted.add(1, job_attributes("log.append", None))
with about_job("0f8fad5b-d9cb-469f-a165-70867728950e"):
    logging.getLogger("delivery.attempts").warning("attempt 1 failed")
# What a job's http.call sends (the same client library), to a target of the test.
httpx.post(os.environ["TEST_TARGET_URL"], content=b"{}")
metrics.get_meter_provider().force_flush()
_logs.get_logger_provider().force_flush()
"""


def run_app_process(**environment: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATION"))}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        env={**keep, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_in_azure_metrics_and_job_logs_reach_application_insights(
    httpserver: HTTPServer,
) -> None:
    envelopes: list[dict[str, Any]] = []

    def track(request: Request) -> Response:
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        items = json.loads(body)
        envelopes.extend(items)
        accepted = {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
        return Response(json.dumps(accepted), content_type="application/json")

    httpserver.expect_request("/v2.1/track", method="POST").respond_with_handler(track)
    httpserver.expect_request("/target", method="POST").respond_with_data("ok")
    run_app_process(
        TEST_TARGET_URL=httpserver.url_for("/target"),
        APPLICATIONINSIGHTS_CONNECTION_STRING=(
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint={httpserver.url_for('/')}"
        ),
        # Nothing but the stand-in is called: no usage statistics to Microsoft, and no
        # Azure VM metadata lookup (169.254.169.254) for the resource.
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",
        OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="otel",
    )

    metrics = [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] == "MetricData"]
    accepted = [
        point
        for data in metrics
        for point in data["metrics"]
        if point["name"] == "scheduler.jobs.accepted"
    ]
    assert accepted
    assert sum(point["value"] for point in accepted) == 1
    logs = [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] == "MessageData"]
    failed = [log for log in logs if log["message"] == "attempt 1 failed"]
    assert failed
    assert failed[0]["properties"]["transaction_id"] == "0f8fad5b-d9cb-469f-a165-70867728950e"
    # The exporter's own requests are not exported as logs (they would feed themselves).
    assert not [log for log in logs if "v2.1/track" in log["message"]]
    # A job's request goes out as scheduled: no tracing header added by an instrumentation.
    sent = [request for request, _ in httpserver.log if request.path == "/target"]
    assert len(sent) == 1
    assert "traceparent" not in sent[0].headers  # (case-insensitive)


def test_locally_the_console_exporter_prints_metrics_and_job_logs(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/target", method="POST").respond_with_data("ok")
    printed = run_app_process(
        SCHEDULER_TELEMETRY_CONSOLE="true", TEST_TARGET_URL=httpserver.url_for("/target")
    ).stdout
    assert '"scheduler.jobs.accepted"' in printed
    assert "attempt 1 failed" in printed
    assert '"transaction_id": "0f8fad5b-d9cb-469f-a165-70867728950e"' in printed
