"""Where the app's metrics and logs go, set up on the first call that needs them (not at
import: the exporters are cold-start weight).

- APPLICATIONINSIGHTS_CONNECTION_STRING set (Azure): the Azure Monitor distro; metrics land
  in customMetrics, logs in traces (with `transaction_id` in customDimensions).
- else OTEL_EXPORTER_OTLP_ENDPOINT set: the OTLP/HTTP exporters (a local collector, Aspire
  dashboard, Jaeger...), configured by the standard OTEL_* variables.
- else SCHEDULER_TELEMETRY_CONSOLE=true: metrics and logs printed to standard output.
- else nothing: the OpenTelemetry API's no-op instruments.

The log records of a job carry its transaction id whatever the exporter (log_context).
"""

import logging
import os
import threading

from scheduling.log_context import install as install_job_ids

METRIC_INTERVAL_MS = 60_000
_lock = threading.Lock()
_configured = threading.Event()
log = logging.getLogger(__name__)


def configure_once() -> None:
    if _configured.is_set():
        return
    with _lock:
        if _configured.is_set():
            return
        _configured.set()
        install_job_ids()
        try:
            _configure()
        except Exception:
            # Telemetry must never take the API down with it.
            log.exception("telemetry could not be configured; the app runs without it")


def _configure() -> None:
    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(logger_name="", enable_live_metrics=False)
        return
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        _install_sdk(OTLPMetricExporter(), OTLPLogExporter())
        return
    if os.environ.get("SCHEDULER_TELEMETRY_CONSOLE", "").lower() in ("1", "true", "yes"):
        from opentelemetry.sdk._logs.export import ConsoleLogExporter
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        _install_sdk(ConsoleMetricExporter(), ConsoleLogExporter())


def _install_sdk(metric_exporter: object, log_exporter: object) -> None:
    from opentelemetry import metrics
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": "durable-scheduler"})
    reader = PeriodicExportingMetricReader(
        metric_exporter,  # type: ignore[arg-type]
        export_interval_millis=METRIC_INTERVAL_MS,
    )
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))  # type: ignore[arg-type]
    set_logger_provider(logger_provider)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
