"""The acceptance scenario: `lifecycle serve` in a subprocess, driven through the CLI like a person."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.served import CLI, ROOT, ServedStack, same_as_truth

pytestmark = pytest.mark.e2e

def test_the_acceptance_scenario_through_the_cli(served: ServedStack) -> None:
    served.start()
    bought = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity", "5",
                        "--activated")
    sid = bought["subscriptionId"]
    assert bought["status"] == "Subscribed"
    assert isinstance(bought["token"], str)
    assert bought["token"]  # the landing page's token, even for a purchase activated at once

    plan = served.cli("sandbox", "change-plan", sid, "business")
    assert (plan["webhookStatus"], plan["status"], plan["decidedBy"]) == (200, "Succeeded", "publisher-ack")
    seats = served.cli("sandbox", "change-quantity", sid, "20")
    assert (seats["webhookStatus"], seats["status"], seats["decidedBy"]) == (200, "Succeeded", "publisher-ack")
    before = served.ours(sid, lambda ours: ours["quantity"] == 20)["subscription"]

    above = served.cli("sandbox", "change-quantity", sid, "60", "--force")  # business allows 5-50
    assert (above["webhookStatus"], above["status"], above["decidedBy"]) == (400, "Failed", "publisher-4xx")
    rejected = served.ours(sid, lambda ours: True)
    assert rejected["subscription"] == before
    assert rejected["history"][0]["operation_id"] == above["operationId"]
    assert (rejected["history"][0]["outcome"], rejected["history"][0]["changes"]) == ("rejected", [])

    for action in ("suspend", "reinstate", "renew"):
        done = served.cli("sandbox", action, sid)
        assert (done["webhookStatus"], done["status"]) == (200, "Succeeded"), action
    renewed = served.ours(sid, lambda ours: same_as_truth(ours, served.cli("sandbox", "show", sid)))

    again = served.cli("sandbox", "redeliver", seats["operationId"], "--times", "3")
    assert again["webhookStatuses"] == [200, 200, 200]
    assert served.cli("subscriptions", "show", sid) == renewed  # nothing changed, nothing recorded

    gone = served.cli("sandbox", "unsubscribe", sid)
    assert (gone["webhookStatus"], gone["status"]) == (200, "Succeeded")
    truth = served.cli("sandbox", "show", sid)
    final = served.ours(sid, lambda ours: ours["status"] == "Unsubscribed")
    assert same_as_truth(final["subscription"], truth)

    changes = [(c["field"], c["before"], c["after"]) for e in final["history"] for c in e["changes"]]
    for change in [("plan_id", "team", "business"), ("quantity", "5", "20"), ("status", "Subscribed", "Suspended"),
                   ("status", "Suspended", "Subscribed"), ("status", "Subscribed", "Unsubscribed")]:
        assert changes.count(change) == 1, change
    assert len([c for c in changes if c[0] == "term" and c[1]]) == 1  # the renewal; the first term was learnt
    applied = [e["operation_id"] for e in final["history"] if e["outcome"] == "applied"]
    assert len(applied) == len(set(applied)) == 6  # each real change once: plan, seats, suspend ... unsubscribe
    operations = [plan, seats, above, gone]
    assert all(served.operation(op["operationId"])["protocol_errors"] == [] for op in operations)

    assert served.stop() < 5


def test_a_restart_on_the_same_state_dir_keeps_our_state_and_the_marketplaces(served: ServedStack) -> None:
    served.start()
    sid = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity", "3",
                     "--activated")["subscriptionId"]
    assert served.cli("sandbox", "change-quantity", sid, "7")["status"] == "Succeeded"
    served.ours(sid, lambda ours: ours["quantity"] == 7)
    second = subprocess.run([*CLI, "serve", "--port", "0"], capture_output=True, env=served.env, cwd=ROOT,
                            timeout=30, check=False)
    assert second.returncode == 1
    assert b"already running" in second.stderr
    served.stop()

    served.start()
    assert served.cli("subscriptions", "show", sid)["subscription"]["quantity"] == 7
    truth = served.cli("sandbox", "show", sid)
    assert (truth["saasSubscriptionStatus"], truth["quantity"]) == ("Subscribed", 7)
    # The same tenant, app and secret: the worker still authenticates the sandbox's webhooks and API.
    change = served.cli("sandbox", "change-quantity", sid, "8")
    assert (change["webhookStatus"], change["status"], change["decidedBy"]) == (200, "Succeeded", "publisher-ack")
    served.stop()
