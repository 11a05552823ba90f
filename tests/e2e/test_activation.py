"""Acceptance: the landing page's back end, POST /api/marketplace/activate, and `lifecycle activate`."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.e2e.served import ServedStack

pytestmark = pytest.mark.e2e


def post(served: ServedStack, body: object) -> httpx.Response:
    return httpx.post(f"{served.info['url']}/api/marketplace/activate", json=body, trust_env=False, timeout=30)


def test_the_endpoint_activates_once_and_answers_returning_visits_and_bad_tokens(served: ServedStack) -> None:
    served.start()
    bought = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity", "3")
    sid = bought["subscriptionId"]
    first = post(served, {"token": quote(bought["token"], safe="")})  # as it arrives in ?token=
    assert (first.status_code, first.json()["status"]) == (200, "activated")
    assert first.json()["subscription"]["status"] == "Subscribed"
    assert served.cli("sandbox", "show", sid)["saasSubscriptionStatus"] == "Subscribed"
    ours = served.cli("subscriptions", "show", sid)
    assert ours["subscription"]["status"] == "Subscribed"
    assert {e["source"] for e in ours["history"]} == {"activation"}

    again = post(served, {"token": bought["token"]})  # "manage account"
    assert (again.status_code, again.json()["status"]) == (200, "already_active")
    assert served.cli("subscriptions", "show", sid)["version"] == ours["version"]

    bad = post(served, {"token": "bm90LWEtdG9rZW4="})
    assert (bad.status_code, bad.json()["error"]) == (400, "the marketplace token is invalid or has expired")
    assert post(served, {}).status_code == 400
    served.stop()


def test_lifecycle_activate_does_what_the_endpoint_does(served: ServedStack) -> None:
    served.start()
    bought = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity", "2")
    done = served.cli("activate", bought["token"])
    assert (done["status"], done["subscription"]["id"]) == ("activated", bought["subscriptionId"])
    assert served.cli("activate", bought["token"])["status"] == "already_active"
    refused = served.run("activate", "bm90LWEtdG9rZW4=")
    assert refused.returncode == 1
    assert "invalid or has expired" in refused.stderr
    served.stop()
