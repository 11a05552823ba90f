"""`telemetry.configure`: off and silent without a connection string, the Azure Monitor distro with one.

The "on" case runs in a child process: installing the distro sets OpenTelemetry's global
providers, which cannot be undone in this one. Its connection string points at a closed
loopback port, and the child refuses every connection that is not loopback.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from lifecycle import telemetry
from lifecycle.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_connection_string_nothing_is_installed_and_no_socket_is_opened(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    real_init = socket.socket.__init__

    def recording_init(self: socket.socket, *args: Any, **kwargs: Any) -> None:
        opened.append(args)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "__init__", recording_init)
    handlers = list(logging.getLogger().handlers)

    assert telemetry.configure(Settings()) is False

    assert opened == []
    assert not telemetry.current().enabled
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)  # still the API's no-op proxy
    assert not isinstance(metrics.get_meter_provider(), MeterProvider)
    assert "azure.monitor.opentelemetry" not in sys.modules
    assert logging.getLogger().handlers == handlers


CHILD = """
import json, logging, os, socket
refused = []
real_connect = socket.socket.connect
def loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if host not in ("127.0.0.1", "::1", "localhost") and self.family in (socket.AF_INET, socket.AF_INET6):
        refused.append(host)
        raise OSError("not loopback")
    return real_connect(self, address)
socket.socket.connect = loopback_only

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from lifecycle import telemetry
from lifecycle.settings import Settings

on = telemetry.configure(Settings.from_env())
again = telemetry.configure(Settings.from_env())
with telemetry.current().tracer.start_as_current_span("probe") as span:
    recording = span.is_recording()
handlers = [type(h).__name__ for name in ("", "lifecycle") for h in logging.getLogger(name).handlers]
print(json.dumps({"on": on, "again": again, "enabled": telemetry.current().enabled, "recording": recording,
                  "tracer_provider": isinstance(trace.get_tracer_provider(), TracerProvider),
                  "meter_provider": isinstance(metrics.get_meter_provider(), MeterProvider),
                  "handlers": handlers, "refused": refused}), flush=True)
os._exit(0)  # no export at exit: the port is closed anyway
"""


def test_with_a_connection_string_the_distro_exports_traces_and_metrics_but_not_logs(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TMPDIR": str(tmp_path),  # where the exporter keeps telemetry it could not send
        "HOME": str(tmp_path),
        "APPLICATIONINSIGHTS_CONNECTION_STRING":
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # the SDK's own usage pings
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",  # no Azure VM metadata lookup
    }
    child = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert child.returncode == 0, child.stderr[-2000:]
    seen = json.loads(child.stdout.strip().splitlines()[-1])

    assert [seen[key] for key in ("on", "again", "enabled", "recording")] == [True] * 4
    assert [seen[key] for key in ("tracer_provider", "meter_provider")] == [True] * 2
    assert "LoggingHandler" not in seen["handlers"]  # logs go through the Functions host, not exported twice
    assert seen["refused"] == []
