"""Traces and metrics through OpenTelemetry, exported to Application Insights when configured.

Instrumented code uses the OpenTelemetry API only. Until `configure` installs the Azure
Monitor distro (APPLICATIONINSIGHTS_CONNECTION_STRING set), the API's global providers
are no-ops: spans are non-recording, instruments record nothing, and nothing is sent.
The composition root wraps the ports in traced decorators only when telemetry is on.

    spans    webhook, process, queue.send, marketplace.<method>, store.<method>
             carrying subscription_id and operation_id (never tokens or bodies)
    metrics  see `lifecycle.telemetry.instruments`
"""

from __future__ import annotations

from lifecycle.telemetry.instruments import Telemetry, configure, current
from lifecycle.telemetry.traced import TracedMarketplaceApi, TracedQueue, TracedStore

__all__ = ["Telemetry", "TracedMarketplaceApi", "TracedQueue", "TracedStore", "configure", "current"]
