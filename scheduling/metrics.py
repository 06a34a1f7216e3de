"""The job counters and histograms, on the OpenTelemetry metrics API.

Whatever MeterProvider is installed receives them: Azure Monitor's in Azure, an OTLP or
console exporter locally (blueprints/telemetry.py), an in-memory reader in tests; none (the
API's no-op) when telemetry is not configured. Attributes are what the status already
shows in clear: the prompt type and the destination (method and origin, never the path).
"""

import functools
from collections.abc import Mapping

from opentelemetry import metrics

METER_NAME = "durable_scheduler"


class JobMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self.accepted = meter.create_counter("scheduler.jobs.accepted", "{job}", "jobs accepted")
        self.fired = meter.create_counter("scheduler.jobs.fired", "{attempt}", "attempts fired")
        self.succeeded = meter.create_counter(
            "scheduler.jobs.succeeded", "{run}", "runs that succeeded"
        )
        self.failed = meter.create_counter(
            "scheduler.jobs.failed", "{run}", "runs that failed with no retry left"
        )
        self.cancelled = meter.create_counter(
            "scheduler.jobs.cancelled", "{job}", "jobs cancelled by a delete or a wipe"
        )
        self.unreadable = meter.create_counter(
            "scheduler.jobs.unreadable",
            "{read}",
            "reads of a job whose record cannot be read or whose payload cannot be opened "
            "(the log line names the job)",
        )
        self.lateness = meter.create_histogram(
            "scheduler.attempt.lateness", "ms", "how long after its due time an attempt fired"
        )
        self.duration = meter.create_histogram(
            "scheduler.attempt.duration", "ms", "how long an attempt took to run its prompt"
        )


@functools.cache
def _metrics_of(provider: metrics.MeterProvider) -> JobMetrics:
    return JobMetrics(provider.get_meter(METER_NAME))


def job_metrics() -> JobMetrics:
    """The instruments of the MeterProvider installed now (set once per process)."""
    return _metrics_of(metrics.get_meter_provider())


def job_attributes(prompt_type: str, destination: str | None) -> Mapping[str, str]:
    return {"prompt_type": prompt_type, "destination": destination or "none"}
