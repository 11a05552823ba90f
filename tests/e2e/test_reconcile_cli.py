"""`lifecycle reconcile` against a served stack: missed deliveries found, classified, repaired through the CLI."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lifecycle.services.reconcile import LEASE_NAME
from lifecycle.store.table import TableSubscriptionStore
from tests.e2e.served import ServedStack, same_as_truth

pytestmark = pytest.mark.e2e

def start(served: ServedStack, *, settle: bool = False) -> ServedStack:
    served.env["RECONCILE_STUCK_AFTER_HOURS"] = "0"  # a purchase pending at all counts as stuck
    if not settle:
        # The worker learnt of these subscriptions through webhooks seconds ago: with the default
        # settling time, every drift in them would wait for the next run (the test at the end).
        served.env["RECONCILE_SETTLE_SECONDS"] = "0"
    return served.start()


def buy(served: ServedStack, *, activated: bool = True) -> str:
    flags = ["--activated"] if activated else []
    bought = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity", "5", *flags)
    return str(bought["subscriptionId"])


def known_to_us(served: ServedStack, *names: str) -> dict[str, str]:
    """Subscriptions the worker learnt of through a delivered webhook (a renewal), equal to the truth."""
    ids = {name: buy(served) for name in names}
    for sid in ids.values():
        served.cli("sandbox", "renew", sid)
    for sid in ids.values():
        wait_until_known(served, sid)
    return ids


def wait_until_known(served: ServedStack, subscription_id: str, timeout: float = 15.0) -> None:
    """Until our state equals the truth; processing runs a moment behind the webhook (the enqueue delay)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = served.run("subscriptions", "show", subscription_id, "--json")
        truth = served.cli("sandbox", "show", subscription_id)
        if shown.returncode == 0 and same_as_truth(json.loads(shown.stdout)["subscription"], truth):
            return
        time.sleep(0.2)
    raise AssertionError(f"{subscription_id} never reached the truth")


def classes(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["subscription_id"], f["kind"], f["remedy"]) for f in report["findings"]}


def test_a_dry_run_reports_each_missed_change_and_a_real_run_repairs_them(served: ServedStack) -> None:
    start(served)
    ids = known_to_us(served, "plan", "quantity", "suspended", "renewed", "unsubscribed", "agrees")
    ids["unknown"] = buy(served)  # activated, but no webhook ever told us
    ids["pending"] = buy(served, activated=False)  # still PendingFulfillmentStart
    with ThreadPoolExecutor(2) as pool:  # each waits for the marketplace's 10-second auto-accept
        list(pool.map(lambda args: served.cli("sandbox", *args, "--no-deliver"),
                      [("change-plan", ids["plan"], "business"), ("change-quantity", ids["quantity"], "9")]))
    for action, name in (("suspend", "suspended"), ("renew", "renewed"), ("unsubscribe", "unsubscribed")):
        served.cli("sandbox", action, ids[name], "--no-deliver")
    before = {name: served.cli("subscriptions", "show", sid) for name, sid in ids.items()
              if name not in ("unknown", "pending")}

    dry = served.cli("reconcile", "--dry-run")

    assert (dry["run"]["status"], dry["run"]["dry_run"], dry["run"]["repaired"]) == ("succeeded", True, 0)
    assert classes(dry) == {
        (ids["plan"], "plan_mismatch", "repair"),
        (ids["quantity"], "quantity_mismatch", "repair"),
        (ids["suspended"], "status_mismatch", "repair"),
        (ids["renewed"], "term_mismatch", "repair"),
        (ids["unsubscribed"], "status_mismatch", "repair"),
        (ids["unknown"], "missing_locally", "adopt"),
        (ids["pending"], "missing_locally", "adopt"),
    }
    assert dry["run"]["counts"] == {"plan_mismatch": 1, "quantity_mismatch": 1, "status_mismatch": 2,
                                    "term_mismatch": 1, "missing_locally": 2}
    assert {name: served.cli("subscriptions", "show", ids[name]) for name in before} == before
    for name in ("unknown", "pending"):
        assert "not known here" in served.run("subscriptions", "show", ids[name]).stderr

    real = served.cli("reconcile")

    assert (real["run"]["status"], real["run"]["dry_run"], real["run"]["repaired"]) == ("succeeded", False, 7)
    assert {(sid, kind) for sid, kind, _ in classes(real)} == {(sid, kind) for sid, kind, _ in classes(dry)}
    for name, sid in ids.items():
        shown, truth = served.cli("subscriptions", "show", sid), served.cli("sandbox", "show", sid)
        if name == "pending":  # no term dates before activation: same_as_truth needs them
            ours = shown["subscription"]
            assert (ours["status"], ours["plan_id"], ours["quantity"]) == (
                truth["saasSubscriptionStatus"], truth["planId"], truth["quantity"])
        else:
            assert same_as_truth(shown["subscription"], truth), name
        if name != "agrees":
            assert (shown["history"][0]["source"], shown["history"][0]["outcome"]) == ("reconciliation", "resynced")
    assert served.cli("subscriptions", "show", ids["agrees"]) == before["agrees"]

    again = served.cli("reconcile")

    assert again["run"]["repaired"] == 0
    assert classes(again) == {(ids["pending"], "stuck_pending", "report")}  # reported, never repaired

    served.cli("reconcile", "tombstone", ids["pending"], "--reason", "a test purchase")
    assert [t["subscription_id"] for t in served.cli("reconcile", "tombstones")] == [ids["pending"]]
    quiet = served.cli("reconcile")
    assert (quiet["findings"], quiet["run"]["skipped"]) == ([], 1)
    assert [r["dry_run"] for r in served.cli("reconcile", "runs", "--limit", "4")] == [False, False, False, True]
    served.stop()


def test_on_a_terminal_the_run_shows_its_progress_then_a_summary_and_the_findings(served: ServedStack) -> None:
    served.env["COLUMNS"] = "200"  # rich's width off a terminal: one finding per line
    start(served)
    sid = known_to_us(served, "suspended")["suspended"]
    served.cli("sandbox", "suspend", sid, "--no-deliver")

    shown = served.run("reconcile", "--dry-run")

    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    progress = out.index("dry run: paging the marketplace's list - 1 pages, 1 listed, 1 ours")
    findings = re.search(r"^Findings\s*$", out, re.MULTILINE)
    assert findings is not None
    assert progress < out.index("dry run: done") < out.index("Findings per class") < findings.start()
    assert re.search(r"status_mismatch\s*│\s*1\s*│\s*1\s*│\s*0\s*│\s*0", out)  # found, would repair, next run, reported
    assert re.search(rf"{sid[:8]}.*status_mismatch.*Subscribed.*Suspended.*would repair", out)
    assert "dry run: nothing changed" in out
    assert served.cli("subscriptions", "show", sid)["subscription"]["status"] == "Subscribed"
    served.stop()


def test_a_run_while_another_holds_the_lease_exits_3_and_changes_nothing(served: ServedStack) -> None:
    start(served)
    sid = known_to_us(served, "suspended")["suspended"]
    served.cli("sandbox", "suspend", sid, "--no-deliver")
    with TableSubscriptionStore.from_connection_string(served.info["storage_connection_string"],
                                                       served.info["table_prefix"]) as store:
        assert store.acquire_lease(LEASE_NAME, "the timer", now=datetime.now(UTC), ttl=timedelta(minutes=10))

    refused = served.run("reconcile")

    assert refused.returncode == 3
    assert "another reconcile run holds the lease" in refused.stderr
    assert served.cli("subscriptions", "show", sid)["subscription"]["status"] == "Subscribed"
    assert served.cli("reconcile", "--dry-run")["run"]["counts"] == {"status_mismatch": 1}  # a dry run may overlap
    served.stop()


def test_drift_right_after_a_webhook_waits_for_the_next_run_and_changes_nothing(served: ServedStack) -> None:
    served.env["COLUMNS"] = "250"
    start(served, settle=True)
    sid = known_to_us(served, "suspended")["suspended"]  # a webhook set every aspect just now
    served.cli("sandbox", "suspend", sid, "--no-deliver")

    report = served.cli("reconcile")
    shown = served.run("reconcile", "--dry-run")

    assert classes(report) == {(sid, "status_mismatch", "wait")}
    assert "a webhook set our status at " in report["findings"][0]["detail"]
    assert report["run"]["repaired"] == 0
    assert served.cli("subscriptions", "show", sid)["subscription"]["status"] == "Subscribed"
    assert re.search(r"status_mismatch\s*│\s*1\s*│\s*0\s*│\s*1\s*│\s*0", shown.stdout)
    assert re.search(rf"{sid[:8]}.*status_mismatch.*Subscribed.*Suspended.*next run", shown.stdout)
    served.stop()
