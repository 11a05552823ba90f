"""The tracer and the metric instruments, and `configure`, which turns export on once per process.

Metrics (Application Insights: customMetrics):

    lifecycle.webhook.deliveries      counter   action, status (the HTTP answer)
    lifecycle.processing.messages     counter   action, disposition (complete, dead_letter, rescheduled,
                                                abandoned: raised for the broker to redeliver)
    lifecycle.processing.lag          histogram seconds from the message being due (enqueued, or its
                                                scheduled time) to processed; action
    lifecycle.processing.retries      counter   our delayed re-sends after the API kept failing; action
    lifecycle.processing.redeliveries counter   broker redeliveries (delivery count > 1)
    lifecycle.processing.dead_letters counter   action, reason (the error's class)
    lifecycle.reconcile.runs          counter   status, dry_run
    lifecycle.reconcile.findings      counter   kind (the drift class), dry_run
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.metrics import Counter, Histogram, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider

from lifecycle import __version__
from lifecycle.settings import Settings

NAME = "lifecycle"


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What instrumented code records with; `enabled` says whether anything is exported."""

    tracer: Tracer
    deliveries: Counter
    messages: Counter
    lag: Histogram
    retries: Counter
    redeliveries: Counter
    dead_letters: Counter
    reconcile_runs: Counter
    reconcile_findings: Counter
    enabled: bool = False

    @classmethod
    def from_providers(
        cls,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        enabled: bool = True,
    ) -> Telemetry:
        """Instruments from these providers; by default the global ones (no-ops until configured)."""
        tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(NAME, __version__)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(NAME, __version__)
        return cls(
            tracer=tracer,
            deliveries=meter.create_counter("lifecycle.webhook.deliveries", "{delivery}",
                                            "Webhook deliveries by action and HTTP answer"),
            messages=meter.create_counter("lifecycle.processing.messages", "{message}",
                                          "Queue messages processed, by action and disposition"),
            lag=meter.create_histogram("lifecycle.processing.lag", "s",
                                       "From a message being due on the queue to its processing's end"),
            retries=meter.create_counter("lifecycle.processing.retries", "{message}",
                                         "Delayed re-sends after the Fulfillment API kept failing"),
            redeliveries=meter.create_counter("lifecycle.processing.redeliveries", "{message}",
                                              "Messages delivered again by the broker (delivery count > 1)"),
            dead_letters=meter.create_counter("lifecycle.processing.dead_letters", "{message}",
                                              "Messages given up on, by action and reason"),
            reconcile_runs=meter.create_counter("lifecycle.reconcile.runs", "{run}",
                                                "Finished reconciliation runs, by status"),
            reconcile_findings=meter.create_counter("lifecycle.reconcile.findings", "{finding}",
                                                    "Drift found by reconciliation, by kind"),
            enabled=enabled,
        )


def ids(subscription_id: str = "", operation_id: str = "", **more: str | int | bool) -> Mapping[str, str | int | bool]:
    """Span attributes naming the subscription and operation; empty values are left out."""
    attributes: dict[str, str | int | bool] = {"subscription_id": subscription_id, "operation_id": operation_id,
                                                **more}
    return {name: value for name, value in attributes.items() if value != ""}


_current = [Telemetry.from_providers(enabled=False)]
_configuring = threading.Lock()


def current() -> Telemetry:
    """The process's telemetry: recording only after `configure` turned it on."""
    return _current[0]


def configure(settings: Settings) -> bool:
    """Install the Azure Monitor distro once if a connection string is set; True when telemetry is on.

    Without APPLICATIONINSIGHTS_CONNECTION_STRING nothing is imported, installed or sent.
    The exporter authenticates as the identity named in APPLICATIONINSIGHTS_AUTHENTICATION_STRING
    (an app setting the exporter reads itself). Logs are not exported here: under the
    Functions host they reach Application Insights through stdlib logging (LOG_SINK=logging),
    and exporting them twice would duplicate every line.
    """
    if not settings.applicationinsights_connection_string:
        return False
    with _configuring:
        if not _current[0].enabled:
            from azure.monitor.opentelemetry import configure_azure_monitor  # heavy: loaded only when on

            # The distro takes no argument to leave logs out (its `disable_logging` is overwritten
            # from the environment): this variable is its switch. An explicit value still wins.
            os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
            configure_azure_monitor(
                connection_string=settings.applicationinsights_connection_string,
                enable_live_metrics=False,  # the Functions host has its own
                # Every trace (one per webhook or message: low volume), not the distro's default of
                # at most 5 per second, which drops some unpredictably. OTEL_TRACES_SAMPLER still wins.
                sampling_ratio=1.0,
            )
            _current[0] = Telemetry.from_providers(enabled=True)
    return True
