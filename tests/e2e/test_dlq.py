"""`lifecycle dlq` on a served stack: a delivery that cannot be verified is given up on; a replay applies it once."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest

from lifecycle.cli.output import wait_for
from tests.e2e.served import ServedStack
from tests.e2e.test_reconcile_cli import buy, start, wait_until_known

pytestmark = pytest.mark.e2e


def faults(served: ServedStack, method: str, body: dict[str, Any] | None = None) -> None:
    url = f"{served.info['sandbox_control_url']}/faults"
    httpx.request(method, url, json=body, trust_env=False, timeout=5).raise_for_status()


def suspend_that_cannot_be_verified(served: ServedStack) -> tuple[str, dict[str, Any]]:
    """A known subscription, then a Suspend whose every API call answers 403 (a permanent error)."""
    start(served)
    sid = buy(served)
    served.cli("sandbox", "renew", sid)
    wait_until_known(served, sid)
    faults(served, "POST", {"status": 403, "path": sid, "method": "GET", "times": 50})
    return sid, served.cli("sandbox", "suspend", sid)


def test_a_dead_lettered_delivery_is_listed_and_a_replay_applies_it_once(served: ServedStack) -> None:
    sid, suspend = suspend_that_cannot_be_verified(served)

    assert suspend["webhookStatus"] == 200  # the webhook takes it; the processor cannot verify it
    listed = wait_for(lambda: served.cli("dlq", "list"), lambda rows: len(rows) == 1, timeout=15.0)
    [dead] = listed  # dead-lettered and recorded failed: one entry, replayed once through the broker
    assert dead["kind"] == "dead-lettered"
    assert (dead["subscription_id"], dead["operation_id"], dead["action"]) == (sid, suspend["operationId"], "Suspend")
    assert "MarketplaceForbidden" in dead["reason"]
    assert (dead["attempt"], dead["deliveries"], dead["source"]) == (1, 1, "webhook")
    assert served.cli("subscriptions", "show", sid)["subscription"]["status"] == "Subscribed"

    faults(served, "DELETE")
    replayed = served.cli("dlq", "replay", suspend["operationId"])

    assert [r["message_id"] for r in replayed["replayed"]] == [dead["message_id"]]
    shown = wait_for(lambda: served.cli("subscriptions", "show", sid),
                     lambda shown: shown["subscription"]["status"] == "Suspended", timeout=15.0)
    entries = [e for e in shown["history"] if e["operation_id"] == suspend["operationId"]]
    assert [(e["outcome"], e["source"]) for e in entries] == [("applied", "replay")]
    assert served.cli("dlq", "list") == []

    again = served.run("dlq", "replay", suspend["operationId"])

    assert again.returncode == 1
    assert "no dead letter" in again.stderr
    assert served.cli("subscriptions", "show", sid) == shown
    served.stop()


def complete_dead_letters(served: ServedStack) -> None:
    """Take the dead letters out of the stack's queue file: what the Functions binding does in Azure,
    where a permanent failure completes the message and only the delivery record keeps it."""
    db = sqlite3.connect(served.state_dir / "queue.sqlite", timeout=30, isolation_level=None)
    try:
        assert db.execute("DELETE FROM messages WHERE state = 'dead'").rowcount == 1
    finally:
        db.close()


def test_a_failed_delivery_without_a_dead_letter_is_listed_and_a_replay_applies_it_once(served: ServedStack) -> None:
    sid, suspend = suspend_that_cannot_be_verified(served)
    wait_for(lambda: served.cli("dlq", "list"), lambda rows: [r["kind"] for r in rows] == ["dead-lettered"],
             timeout=15.0)
    complete_dead_letters(served)

    [failed] = served.cli("dlq", "list")

    assert (failed["kind"], failed["subscription_id"], failed["operation_id"], failed["action"]) == (
        "failed", sid, suspend["operationId"], "Suspend")
    assert failed["message_id"] == suspend["operationId"]
    assert "403 Forbidden" in failed["reason"]

    faults(served, "DELETE")
    replayed = served.cli("dlq", "replay", "--all")

    assert [(r["kind"], r["operation_id"]) for r in replayed["replayed"]] == [("failed", suspend["operationId"])]
    shown = wait_for(lambda: served.cli("subscriptions", "show", sid),
                     lambda shown: shown["subscription"]["status"] == "Suspended", timeout=15.0)
    entries = [e for e in shown["history"] if e["operation_id"] == suspend["operationId"]]
    assert [(e["outcome"], e["source"]) for e in entries] == [("applied", "replay")]
    assert served.cli("dlq", "list") == []
    assert served.cli("dlq", "replay", "--all") == {"replayed": []}
    assert served.cli("subscriptions", "show", sid) == shown
    served.stop()
