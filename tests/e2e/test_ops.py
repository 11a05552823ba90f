"""The ops surface as a new user meets it: `lifecycle serve`, a few subscriptions in various states
bought and changed through `lifecycle sandbox`, then questions through the CLI and the local HTTP API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.served import ServedStack

pytestmark = pytest.mark.e2e


def bought(served: ServedStack, offer: str, plan: str, *extra: str) -> dict[str, Any]:
    """A Subscribed purchase, and the marketplace's truth of it (tenants included)."""
    sid = served.cli("sandbox", "purchase", "--offer", offer, "--plan", plan, "--activated", *extra)["subscriptionId"]
    return served.cli("sandbox", "show", sid)  # type: ignore[no-any-return]


def listed(served: ServedStack, *filters: str) -> set[str]:
    return {s["id"] for s in served.cli("subscriptions", "list", *filters)["subscriptions"]}


def test_every_question_through_the_cli_and_the_http_api(served: ServedStack) -> None:
    served.start()
    suspended = bought(served, "contoso-seats", "team", "--quantity", "5")
    changed = bought(served, "contoso-seats", "team", "--quantity", "5")
    csp = bought(served, "contoso-flat", "basic", "--csp")
    gone = bought(served, "contoso-seats", "business", "--quantity", "5")
    served.cli("sandbox", "change-quantity", suspended["id"], "6")  # our table learns of it (adopted whole)
    served.ours(suspended["id"], lambda ours: ours["quantity"] == 6)
    suspend = served.cli("sandbox", "suspend", suspended["id"])
    served.cli("sandbox", "change-quantity", changed["id"], "7")
    served.cli("sandbox", "renew", csp["id"])
    served.cli("sandbox", "unsubscribe", gone["id"])
    for truth in (suspended, changed, csp, gone):  # processing runs behind the webhook: wait for each
        final = served.cli("sandbox", "show", truth["id"])

        def settled(ours: dict[str, Any], final: dict[str, Any] = final) -> bool:
            return bool(ours["status"] == final["saasSubscriptionStatus"] and ours["quantity"] == final.get("quantity"))

        served.ours(truth["id"], settled)
    every = {suspended["id"], changed["id"], csp["id"], gone["id"]}

    # Every filter returns exactly the matching subscriptions.
    assert listed(served, "--status", "Suspended") == {suspended["id"]}
    assert listed(served, "--status", "Subscribed") == {changed["id"], csp["id"]}
    assert listed(served, "--status", "Unsubscribed") == {gone["id"]}
    assert listed(served, "--offer", "contoso-flat") == {csp["id"]}
    assert listed(served, "--plan", "team") == {suspended["id"], changed["id"]}
    assert listed(served, "--plan", "business", "--status", "Unsubscribed") == {gone["id"]}
    assert listed(served, "--tenant", changed["beneficiary"]["tenantId"]) == {changed["id"]}
    assert listed(served, "--purchaser", csp["purchaser"]["tenantId"]) == {csp["id"]}
    assert listed(served, "--tenant", csp["purchaser"]["tenantId"]) == set()  # the partner uses nothing itself
    assert listed(served, "--test") == set()
    assert listed(served, "--no-test") == every
    assert listed(served, "--no-free-trial", "--status", "Subscribed") == {changed["id"], csp["id"]}
    assert listed(served, "--renewals-at-risk", "400") == set()  # the sandbox sells with autoRenew on
    assert listed(served) == every

    first = served.cli("subscriptions", "list", "--limit", "3")
    rest = served.cli("subscriptions", "list", "--limit", "3", "--continuation", first["continuation"])
    assert len(first["subscriptions"]) == 3
    assert {s["id"] for s in first["subscriptions"] + rest["subscriptions"]} == every
    assert rest["continuation"] is None
    terminal = served.run("subscriptions", "list", "--limit", "1")
    assert terminal.returncode == 0
    assert "--continuation" in terminal.stdout

    # The history shows each change with its source and operation id, newest first.
    events = served.cli("subscriptions", "history", suspended["id"])["events"]
    assert (events[0]["operation_id"], events[0]["source"], events[0]["action"]) == (
        suspend["operationId"], "webhook", "Suspend")
    assert {"field": "status", "before": "Subscribed", "after": "Suspended"} in events[0]["changes"]

    # A tenant's entitlements: only what it may use now.
    def entitled(truth: dict[str, Any]) -> list[str]:
        found = served.cli("entitlements", truth["beneficiary"]["tenantId"])["entitlements"]
        return [e["subscription_id"] for e in found]

    assert entitled(changed) == [changed["id"]]
    assert entitled(csp) == [csp["id"]]
    assert entitled(suspended) == entitled(gone) == []

    # The same answers over HTTP, behind the key.
    key = (served.state_dir / "ops-api-key").read_text().strip()
    api = served.info["url"] + "/api/"

    def call(path: str, key_header: str | None = key, **params: str) -> httpx.Response:
        headers = {"x-functions-key": key_header} if key_header is not None else {}
        return httpx.get(api + path, params=params, headers=headers, trust_env=False, timeout=10)

    assert call("subscriptions", key_header=None, status="Suspended").status_code == 401
    assert call("subscriptions", key_header="wrong", status="Suspended").status_code == 401
    assert httpx.get(api + "subscriptions", params={"code": key}, trust_env=False).status_code == 200
    listed_http = call("subscriptions", status="Suspended").json()
    assert [s["id"] for s in listed_http["subscriptions"]] == [suspended["id"]]
    injected = call("subscriptions", status="Suspended' or '1' eq '1")
    assert injected.status_code == 400
    assert "status" in injected.json()["error"]
    assert call("subscriptions/not-a-guid").status_code == 400
    assert call("subscriptions/00000000-0000-0000-0000-000000000000").status_code == 404
    one = call(f"subscriptions/{changed['id']}").json()
    assert (one["subscription"]["quantity"], one["subscription"]["status"]) == (7, "Subscribed")
    assert call(f"subscriptions/{suspended['id']}/events").json()["events"] == events
    http_entitled = call("entitlements", tenantId=changed["beneficiary"]["tenantId"]).json()["entitlements"]
    assert [e["subscription_id"] for e in http_entitled] == [changed["id"]]
    served.stop()
