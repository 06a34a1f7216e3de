"""Where the app's metrics and logs go, set up on the first call that needs them (not at
import: the exporters are cold-start weight).

- APPLICATIONINSIGHTS_CONNECTION_STRING set (Azure): the Azure Monitor distro; metrics land
  in customMetrics, logs in traces (with `transaction_id` in customDimensions); with an Entra
  token when APPLICATIONINSIGHTS_AUTHENTICATION_STRING is `ClientId=...;Authorization=AAD`.
- else OTEL_EXPORTER_OTLP_ENDPOINT set: the OTLP/HTTP exporters (a local collector, Aspire
  dashboard, Jaeger...), configured by the standard OTEL_* variables.
- else SCHEDULER_TELEMETRY_CONSOLE=true: metrics and logs printed to standard output.
- else nothing: the OpenTelemetry API's no-op instruments.

The log records of a job carry its transaction id whatever the exporter (log_context).
"""

import logging
import os
import threading
from collections.abc import Mapping

from scheduling.log_context import install as install_job_ids

METRIC_INTERVAL_MS = 60_000
# What the Azure Monitor distro instruments unless told not to (its opt-out list).
_INSTRUMENTATIONS = (
    "azure_sdk",
    "django",
    "fastapi",
    "flask",
    "httpx",
    "httpx2",
    "psycopg2",
    "requests",
    "urllib",
    "urllib3",
)
# The Azure SDK logs every request it sends and every answer, headers and all, at INFO:
# thousands of lines a minute on a busy app (in the host's log stream, and billed in
# Application Insights), ordinary 404s among them (a table's existence check) that read like
# errors, and CPU on every store call. Its warnings and errors still come through; with
# SCHEDULER_LOG_LEVEL=DEBUG, every line does.
SDK_REQUEST_LOGGER = "azure.core.pipeline.policies.http_logging_policy"
# urllib3 (under the SDK's transport) logs each raw request line at DEBUG, query and all (and
# a retried one's URL): a storage SAS's `sig` in clear, where the SDK's own line shows it
# REDACTED. Never below INFO.
RAW_REQUEST_LOGGER = "urllib3"
LOG_LEVEL_SETTING = "SCHEDULER_LOG_LEVEL"
LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
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
        quiet_sdk_requests(log_level(os.environ))
        install_job_ids()
        try:
            _configure()
        except Exception:
            # Telemetry must never take the API down with it.
            log.exception("telemetry could not be configured; the app runs without it")


def log_level(environ: Mapping[str, str]) -> int:
    """SCHEDULER_LOG_LEVEL: DEBUG, INFO (the default) or WARNING, in any case."""
    return LOG_LEVELS.get(environ.get(LOG_LEVEL_SETTING, "").strip().upper(), logging.INFO)


def quiet_sdk_requests(level: int) -> None:
    """The SDK's line per storage request only when DEBUG was asked for."""
    sdk_level = logging.NOTSET if level <= logging.DEBUG else logging.WARNING
    logging.getLogger(SDK_REQUEST_LOGGER).setLevel(sdk_level)
    raw = logging.getLogger(RAW_REQUEST_LOGGER)
    if raw.level < logging.INFO:  # its own level: whatever the root is set to later
        raw.setLevel(logging.INFO)


def _configure() -> None:
    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        from azure.monitor.opentelemetry import configure_azure_monitor

        # The infra turns Application Insights' local auth off: the exporter then needs an
        # Entra token, as the identity APPLICATIONINSIGHTS_AUTHENTICATION_STRING names.
        identity = entra_identity(os.environ.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"))
        extra: dict[str, object] = {}
        if identity is not None:
            from azure.identity import ManagedIdentityCredential

            extra["credential"] = ManagedIdentityCredential(client_id=identity.get("client_id"))
        before = list(logging.getLogger().handlers)
        configure_azure_monitor(
            logger_name="",
            enable_live_metrics=False,
            # Metrics and logs only. No tracing, and none of the distro's instrumentations:
            # the httpx one would add `traceparent` to the requests jobs send, which must go
            # out exactly as scheduled.
            disable_tracing=True,
            instrumentation_options={name: {"enabled": False} for name in _INSTRUMENTATIONS},
            **extra,
        )
        _quiet_exporter_logs(before)
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


def entra_identity(authentication: str | None) -> dict[str, str] | None:
    """The managed identity an `Authorization=AAD` authentication string (the form the
    Functions host reads) names: `{"client_id": ...}` for a user-assigned one, `{}` for the
    system-assigned one; None without Entra authorization (the connection string alone)."""
    fields = dict(part.split("=", 1) for part in (authentication or "").split(";") if "=" in part)
    if fields.get("Authorization", "").upper() != "AAD":
        return None
    return {"client_id": fields["ClientId"]} if fields.get("ClientId") else {}


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
    handler = LoggingHandler(logger_provider=logger_provider)
    handler.addFilter(_NoTransportLogs())
    logging.getLogger().addHandler(handler)


# The SDKs' own transport logs. Exported, each would make an export request, which logs,
# which is exported... (at INFO the Azure SDK logs every request it sends). They stay in the
# Functions host's own log stream; only the export leaves them out.
_TRANSPORT_LOGGERS = (
    "azure.core",
    "azure.identity",
    "azure.monitor",
    "opentelemetry",
    "urllib3",
    "requests",
)


class _NoTransportLogs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_TRANSPORT_LOGGERS)


def _quiet_exporter_logs(before: list[logging.Handler]) -> None:
    """Keep the SDK transport logs out of the handlers the exporter set up on the root."""
    for handler in logging.getLogger().handlers:
        if handler not in before:
            handler.addFilter(_NoTransportLogs())
