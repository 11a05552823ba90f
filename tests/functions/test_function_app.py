"""function_app registers exactly our functions, and importing it touches nothing outside.

The import runs in a fresh interpreter with an empty environment, sockets that refuse to
connect and a `Settings.from_env` that refuses to be called: an import that connected or
read settings would fail in Azure the way these checks fail here, leaving zero functions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from functions import activation, health, ops, processor, product, reconcile, webhook
from tests.functions import user_function

ROOT = Path(__file__).resolve().parents[2]

_INDEX = """
import json, socket, sys
import lifecycle.settings

def refuse(*args, **kwargs):
    raise AssertionError("function_app touched the outside world at import")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
lifecycle.settings.Settings.from_env = classmethod(refuse)

import function_app
from lifecycle import bootstrap

# get_function_json is what the worker reports to the host when it indexes the app.
functions = {f.get_function_name(): json.loads(f.get_function_json()) for f in function_app.app.get_functions()}
json.dump({"functions": functions, "worker_built": len(bootstrap._built)}, sys.stdout)
"""


@pytest.fixture(scope="module")
def indexed() -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", _INDEX], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def trigger(indexed: dict[str, Any], name: str) -> dict[str, Any]:
    bindings = indexed["functions"][name]["bindings"]
    found: dict[str, Any] = next(b for b in bindings if b["direction"] == "IN")
    return found


def test_importing_function_app_builds_no_worker(indexed: dict[str, Any]) -> None:
    assert indexed["worker_built"] == 0


def test_function_app_registers_exactly_our_functions(indexed: dict[str, Any]) -> None:
    assert set(indexed["functions"]) == {"marketplace_webhook", "process_delivery", "health", "reconcile",
                                         "marketplace_activate", "product_dispatch", *OPS_FUNCTIONS}


OPS_FUNCTIONS = {"ops_subscriptions": "subscriptions", "ops_subscription": "subscriptions/{id}",
                 "ops_subscription_events": "subscriptions/{id}/events", "ops_entitlements": "entitlements"}


@pytest.mark.parametrize(("name", "route"), OPS_FUNCTIONS.items())
def test_the_ops_api_is_keyed_gets_on_the_contract_routes(indexed: dict[str, Any], name: str, route: str) -> None:
    assert trigger(indexed, name) == {
        "direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["GET"], "authLevel": "FUNCTION",
        "route": route,
    }
    assert {"direction": "OUT", "type": "http", "name": "$return"} in indexed["functions"][name]["bindings"]


def test_activation_is_a_keyed_post_on_its_route(indexed: dict[str, Any]) -> None:
    assert trigger(indexed, "marketplace_activate") == {
        "direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["POST"], "authLevel": "FUNCTION",
        "route": "marketplace/activate",
    }


def test_the_product_dispatcher_is_a_monitored_timer_every_minute(indexed: dict[str, Any]) -> None:
    assert indexed["functions"]["product_dispatch"]["bindings"] == [{
        "direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "0 * * * * *",
        "runOnStartup": False, "useMonitor": True,
    }]


def test_the_webhook_is_an_anonymous_post_on_the_contract_route(indexed: dict[str, Any]) -> None:
    assert trigger(indexed, "marketplace_webhook") == {
        "direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["POST"], "authLevel": "ANONYMOUS",
        "route": "marketplace/webhook",
    }


def test_health_is_an_anonymous_get(indexed: dict[str, Any]) -> None:
    assert trigger(indexed, "health") == {
        "direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["GET"], "authLevel": "ANONYMOUS",
        "route": "health",
    }


def test_http_functions_answer_through_their_return_value(indexed: dict[str, Any]) -> None:
    for name in ("marketplace_webhook", "health", "marketplace_activate"):
        assert {"direction": "OUT", "type": "http", "name": "$return"} in indexed["functions"][name]["bindings"]


def test_the_processor_is_a_session_queue_trigger_named_by_settings(indexed: dict[str, Any]) -> None:
    assert indexed["functions"]["process_delivery"]["bindings"] == [{
        "direction": "IN", "type": "serviceBusTrigger", "name": "msg", "connection": "SERVICEBUS",
        "queueName": "%SERVICEBUS_QUEUE%", "isSessionsEnabled": True,
    }]


def test_reconcile_is_a_monitored_timer_on_the_configured_schedule(indexed: dict[str, Any]) -> None:
    assert indexed["functions"]["reconcile"]["bindings"] == [{
        "direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "%RECONCILE_SCHEDULE%",
        "runOnStartup": False, "useMonitor": True,
    }]


def test_a_failed_reconcile_run_is_retried_with_exponential_backoff() -> None:
    app = func.FunctionApp()
    app.register_functions(reconcile.bp)
    [function] = app.get_functions()
    retry = function.get_settings_dict("retry_policy")
    assert retry is not None
    assert retry["strategy"] == "exponential_backoff"
    assert int(retry["max_retry_count"]) == 3
    # The Python worker reads the intervals as HH:MM:SS (time.strptime) when it indexes the app.
    for interval in (retry["minimum_interval"], retry["maximum_interval"]):
        time.strptime(interval, "%H:%M:%S")


@pytest.mark.parametrize(("bp", "name"), [
    (webhook.bp, "marketplace_webhook"), (processor.bp, "process_delivery"), (health.bp, "health"),
    (reconcile.bp, "reconcile"), (activation.bp, "marketplace_activate"), (product.bp, "product_dispatch"),
    *((ops.bp, name) for name in OPS_FUNCTIONS),
])
def test_annotations_pass_the_workers_binding_checks(bp: func.Blueprint, name: str) -> None:
    # What the Python worker does at indexing: resolve the (string) annotations and ask each
    # binding's converter whether it accepts the annotated type.
    app = func.FunctionApp()
    app.register_functions(bp)
    function = next(f for f in app.get_functions() if f.get_function_name() == name)
    hints = typing.get_type_hints(user_function(bp, name))
    registry = func.get_binding_registry()  # type: ignore[no-untyped-call]
    for binding in function.get_bindings():
        converter = registry.get(binding.type)
        if binding.name == "$return":
            assert converter.check_output_type_annotation(hints["return"])
        else:
            assert converter.check_input_type_annotation(hints[binding.name])
