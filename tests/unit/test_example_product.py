"""The example product takes each event's subscription as the whole truth."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

PRODUCT = Path(__file__).resolve().parents[2] / "examples" / "product" / "product.py"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_product", PRODUCT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("kind", "status", "active"), [
    ("subscription.activated", "Subscribed", True),
    ("subscription.suspended", "Suspended", False),
    ("subscription.synced", "Unsubscribed", False),  # learnt by reconciliation, not by an unsubscribe event
    ("subscription.synced", "Subscribed", True),
])
def test_a_subscription_is_usable_only_while_subscribed(tmp_path: Path, kind: str, status: str, active: bool) -> None:
    product = example().Product(tmp_path / "state.json", set())
    subscription = {"id": "s1", "planId": "team", "quantity": 5, "beneficiaryTenantId": "t1", "status": status}

    assert product.apply({"id": "e1", "type": kind, "subscription": subscription})

    assert product.tenants["t1"]["s1"]["active"] is active
