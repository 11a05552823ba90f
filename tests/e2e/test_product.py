"""Acceptance: the publisher's product learns of every change, in order, once each, and can veto.

`lifecycle serve` in a subprocess with the example product (examples/product) as the
product, both on loopback; the marketplace is played through the sandbox CLI.
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lifecycle.product.signing import signed_headers
from tests.e2e.served import ROOT, ServedStack

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "product" / "product.py"


class ExampleProduct:
    """examples/product/product.py in a subprocess on a fixed port (so it can be restarted)."""

    def __init__(self, state_file: Path, secret: str, unsupported: str = "") -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {"PATH": "", "PRODUCT_SIGNING_SECRET": secret, "PRODUCT_PORT": str(self.port),
                    "PRODUCT_STATE_FILE": str(state_file), "PRODUCT_UNSUPPORTED_PLANS": unsupported}
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> ExampleProduct:
        self.process = subprocess.Popen([sys.executable, str(EXAMPLE)], env=self.env, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        assert "listening" in self.process.stdout.readline()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=10)
        self.process = None

    def state(self) -> Any:
        return httpx.get(f"{self.url}/state", trust_env=False).json()

    def until(self, done: Callable[[Any], bool], timeout: float = 20.0) -> Any:
        """The product's state once `done` holds for it; AssertionError with the last state if not in time."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if done(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {timeout:g} s; the product's state: {state}")
            time.sleep(0.1)


@pytest.fixture
def secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def product(tmp_path: Path, secret: str) -> Iterator[ExampleProduct]:
    running = ExampleProduct(tmp_path / "product-state.json", secret, unsupported="enterprise").start()
    yield running
    running.stop()


@pytest.fixture
def connected(served: ServedStack, product: ExampleProduct, secret: str) -> ServedStack:
    served.env.update({"PRODUCT_EVENTS_URL": f"{product.url}/events", "PRODUCT_VETO_URL": f"{product.url}/veto",
                       "PRODUCT_SIGNING_SECRET": secret, "PRODUCT_RETRY_MAX_SECONDS": "0.5"})
    return served.start()


def events_of(state: Any, subscription_id: str) -> list[str]:
    return [e["type"].removeprefix("subscription.") for e in state["applied"] if e["subscriptionId"] == subscription_id]


def seats(state: Any, subscription_id: str) -> Any:
    return next(subs[subscription_id] for subs in state["tenants"].values() if subscription_id in subs)


def buy(served: ServedStack, quantity: int = 5) -> str:
    bought = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity",
                        str(quantity))
    activated = httpx.post(f"{served.info['url']}/api/marketplace/activate", json={"token": bought["token"]},
                           trust_env=False, timeout=30)
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "activated"
    return str(bought["subscriptionId"])


def test_a_purchase_activated_through_the_endpoint_is_provisioned_and_seat_changes_reach_the_product(
    connected: ServedStack, product: ExampleProduct
) -> None:
    sid = buy(connected)
    state = product.until(lambda s: events_of(s, sid) == ["activated"])
    assert events_of(state, sid) == ["activated"]
    assert seats(state, sid) == {"plan": "team", "seats": 5, "status": "Subscribed", "active": True}

    assert connected.cli("sandbox", "change-quantity", sid, "8")["status"] == "Succeeded"
    state = product.until(lambda s: seats(s, sid)["seats"] == 8)
    assert events_of(state, sid) == ["activated", "quantityChanged"]
    assert connected.cli("sandbox", "show", sid)["saasSubscriptionStatus"] == "Subscribed"


def test_a_plan_the_product_vetoes_is_refused_within_the_window_and_fails_at_the_marketplace(
    connected: ServedStack, product: ExampleProduct
) -> None:
    sid = buy(connected, quantity=10)  # enterprise takes 10 seats or more: the marketplace allows the change
    started = time.monotonic()
    refused = connected.cli("sandbox", "change-plan", sid, "enterprise")
    assert time.monotonic() - started < 10
    assert (refused["webhookStatus"], refused["status"], refused["decidedBy"]) == (400, "Failed", "publisher-4xx")
    history = connected.cli("subscriptions", "show", sid)["history"]
    assert history[0]["outcome"] == "rejected"
    assert "not supported by this product" in history[0]["reason"]
    accepted = connected.cli("sandbox", "change-plan", sid, "business")
    assert (accepted["webhookStatus"], accepted["status"]) == (200, "Succeeded")
    assert seats(product.until(lambda s: seats(s, sid)["plan"] == "business"), sid)["plan"] == "business"


def test_suspend_reinstate_and_unsubscribe_reach_the_product_in_order(
    connected: ServedStack, product: ExampleProduct
) -> None:
    sid = buy(connected)
    for action in ("suspend", "reinstate", "unsubscribe"):
        assert connected.cli("sandbox", action, sid)["webhookStatus"] == 200, action
    expected = ["activated", "suspended", "reinstated", "unsubscribed"]
    state = product.until(lambda s: events_of(s, sid) == expected)
    assert events_of(state, sid) == expected
    assert seats(state, sid)["active"] is False


def test_events_made_while_the_product_is_down_all_arrive_once_each_after_it_returns(
    connected: ServedStack, product: ExampleProduct
) -> None:
    sid = buy(connected)
    product.until(lambda s: events_of(s, sid) == ["activated"])
    product.stop()
    for quantity in ("6", "7"):
        assert connected.cli("sandbox", "change-quantity", sid, quantity)["status"] == "Succeeded"
    assert connected.cli("sandbox", "suspend", sid)["webhookStatus"] == 200
    connected.ours(sid, lambda ours: ours["status"] == "Suspended")
    pending = connected.cli("product", "pending")["pending"]
    assert [p["type"] for p in pending if p["subscriptionId"] == sid][:1] == ["subscription.quantityChanged"]

    product.start()
    expected = ["activated", "quantityChanged", "quantityChanged", "suspended"]
    state = product.until(lambda s: events_of(s, sid) == expected)
    assert events_of(state, sid) == expected
    assert seats(state, sid)["seats"] == 7
    ids = [e["id"] for e in state["applied"]]
    assert len(ids) == len(set(ids))
    assert connected.cli("product", "pending")["pending"] == []


def test_the_example_product_refuses_a_tampered_signature(product: ExampleProduct, secret: str) -> None:
    body = b'{"specVersion":"1","id":"evt_x","type":"subscription.suspended","subscription":{"id":"s"}}'
    headers = signed_headers(secret, body, now=time.time(), event_id="evt_x")
    tampered = body.replace(b"suspended", b"activated")
    assert httpx.post(f"{product.url}/events", content=tampered, headers=headers, trust_env=False).status_code == 401
    stale = signed_headers(secret, body, now=time.time() - 600, event_id="evt_x")
    assert httpx.post(f"{product.url}/events", content=body, headers=stale, trust_env=False).status_code == 401
    wrong = signed_headers("another secret", body, now=time.time(), event_id="evt_x")
    assert httpx.post(f"{product.url}/events", content=body, headers=wrong, trust_env=False).status_code == 401
    assert product.state()["applied"] == []
