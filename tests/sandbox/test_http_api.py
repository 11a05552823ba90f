"""The Fulfillment API over HTTP: Microsoft's paths, auth, api-version, headers and bodies."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from lifecycle.sandbox import Sandbox
from tests.sandbox.conftest import API_VERSION, SCOPE
from tests.sandbox.receiver import Receiver


def follow(api: httpx.Client, url: str) -> httpx.Response:
    """GET an absolute URL the API handed out (@nextLink, Operation-Location) exactly as given."""
    return httpx.get(url, headers={"Authorization": api.headers["Authorization"]}, trust_env=False)


def bought(sandbox: Sandbox, *, activated: bool = True) -> str:
    subscription, _ = sandbox.marketplace.purchase("contoso-seats", "team", 3, activated=activated)
    return str(subscription["id"])


# -- authentication and api-version ----------------------------------------------


def test_no_bearer_token_is_401(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.api_url}/saas/subscriptions", params={"api-version": API_VERSION})
    assert response.status_code == 401


def test_tokens_not_issued_for_the_api_are_401(sandbox: Sandbox) -> None:
    url = f"{sandbox.api_url}/saas/subscriptions"
    for token in (
        "not-a-jwt",
        sandbox.entra.webhook_token(),  # right keys, wrong audience (the publisher's app)
        sandbox.entra.webhook_token(audience="20e940b3-4c77-4b0b-9a53-9e16a1b010a7", unpublished_key=True),
    ):
        response = httpx.get(url, params={"api-version": API_VERSION}, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


def test_another_apps_token_is_403(sandbox: Sandbox) -> None:
    sandbox.entra.register_client("other-app", "other-secret")
    other = sandbox.entra.issue_token(
        sandbox.tenant_id,
        {"grant_type": "client_credentials", "client_id": "other-app", "client_secret": "other-secret", "scope": SCOPE},
    )
    headers = {"Authorization": f"Bearer {other['access_token']}"}
    response = httpx.get(f"{sandbox.api_url}/saas/subscriptions", params={"api-version": API_VERSION}, headers=headers)
    assert response.status_code == 403


def test_missing_api_version_is_400_unspecified(sandbox: Sandbox, api: httpx.Client) -> None:
    response = api.get("/saas/subscriptions", params={"api-version": ""})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ApiVersionUnspecified"


def test_other_api_version_is_400_unsupported(api: httpx.Client) -> None:
    response = api.get("/saas/subscriptions", params={"api-version": "2022-03-01"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "UnsupportedApiVersion"


def test_request_ids_are_echoed_or_made_up(api: httpx.Client) -> None:
    echoed = api.get("/saas/subscriptions", headers={"x-ms-requestid": "req-1", "x-ms-correlationid": "corr-1"})
    assert (echoed.headers["x-ms-requestid"], echoed.headers["x-ms-correlationid"]) == ("req-1", "corr-1")
    made_up = api.get("/saas/subscriptions")
    assert made_up.headers["x-ms-requestid"]
    assert made_up.headers["x-ms-correlationid"]


# -- subscriptions ---------------------------------------------------------------------


def test_no_subscriptions_is_an_empty_200(api: httpx.Client) -> None:
    response = api.get("/saas/subscriptions")
    assert (response.status_code, response.content) == (200, b"")


def test_list_follows_absolute_next_links_over_odd_pages(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.marketplace.page_size = 7
    ids = [bought(sandbox) for _ in range(16)]
    seen: list[str] = []
    body = api.get("/saas/subscriptions").json()
    sizes = [len(body["subscriptions"])]
    seen += [s["id"] for s in body["subscriptions"]]
    while body.get("@nextLink"):
        assert body["@nextLink"].startswith(sandbox.api_url)
        body = follow(api, body["@nextLink"]).json()  # the link carries its own api-version
        sizes.append(len(body["subscriptions"]))
        seen += [s["id"] for s in body["subscriptions"]]
    assert (seen, sizes) == (ids, [7, 7, 2])


def test_resolve_takes_the_url_decoded_landing_page_token(sandbox: Sandbox, api: httpx.Client) -> None:
    subscription, token = sandbox.marketplace.purchase("contoso-flat", "basic")
    landing_page = f"https://publisher.example/landing?token={quote(token, safe='')}"
    decoded = parse_qs(urlsplit(landing_page).query)["token"][0]
    resolved = api.post("/saas/subscriptions/resolve", headers={"x-ms-marketplace-token": decoded})
    assert resolved.status_code == 200
    assert resolved.json()["id"] == subscription["id"]
    still_encoded = api.post("/saas/subscriptions/resolve", headers={"x-ms-marketplace-token": quote(token)})
    assert still_encoded.status_code == 400


def test_activate_then_get_shows_subscribed(sandbox: Sandbox, api: httpx.Client) -> None:
    subscription_id = bought(sandbox, activated=False)
    assert api.post(f"/saas/subscriptions/{subscription_id}/activate", json={"planId": "team"}).status_code == 200
    assert api.get(f"/saas/subscriptions/{subscription_id}").json()["saasSubscriptionStatus"] == "Subscribed"


def test_unknown_subscription_is_404(api: httpx.Client) -> None:
    assert api.get("/saas/subscriptions/00000000-0000-0000-0000-000000000000").status_code == 404


def test_list_available_plans(sandbox: Sandbox, api: httpx.Client) -> None:
    plans = api.get(f"/saas/subscriptions/{bought(sandbox)}/listAvailablePlans").json()["plans"]
    assert [plan["planId"] for plan in plans] == ["team", "business", "enterprise"]


def test_patch_needs_exactly_one_of_plan_and_quantity(sandbox: Sandbox, api: httpx.Client) -> None:
    subscription_id = bought(sandbox)
    for body in ({"planId": "business", "quantity": 6}, {}):
        assert api.patch(f"/saas/subscriptions/{subscription_id}", json=body).status_code == 400


# -- operations ------------------------------------------------------------------------


def test_patch_is_202_with_the_operation_location(sandbox: Sandbox, api: httpx.Client) -> None:
    subscription_id = bought(sandbox)
    response = api.patch(f"/saas/subscriptions/{subscription_id}", json={"quantity": 5})
    assert response.status_code == 202
    location = response.headers["Operation-Location"]
    operation_id = urlsplit(location).path.rsplit("/", 1)[-1]
    assert parse_qs(urlsplit(location).query)["api-version"] == [API_VERSION]
    operation = follow(api, location).json()
    assert (operation["id"], operation["status"], operation["quantity"]) == (operation_id, "InProgress", 5)
    outstanding = api.get(f"/saas/subscriptions/{subscription_id}/operations").json()
    assert [op["id"] for op in outstanding["operations"]] == [operation_id]


def test_operation_patch_200_then_409(sandbox: Sandbox, api: httpx.Client) -> None:
    subscription_id = bought(sandbox)
    operation = sandbox.marketplace.change_quantity(subscription_id, 6, deliver=False)
    url = f"/saas/subscriptions/{subscription_id}/operations/{operation['id']}"
    assert api.patch(url, json={"status": "Success"}).status_code == 200
    again = api.patch(url, json={"status": "Success"})
    assert again.status_code == 409
    assert "Error" in again.json()  # a different error shape than 400's: never parse strictly
    assert api.get(f"/saas/subscriptions/{subscription_id}").json()["quantity"] == 6


def test_operation_patch_on_suspend_is_400(sandbox: Sandbox, api: httpx.Client) -> None:
    subscription_id = bought(sandbox)
    operation = sandbox.marketplace.suspend(subscription_id, deliver=False)
    url = f"/saas/subscriptions/{subscription_id}/operations/{operation['id']}"
    assert api.patch(url, json={"status": "Success"}).status_code == 400


def test_delete_is_202_and_unsubscribes(sandbox: Sandbox, api: httpx.Client) -> None:
    subscription_id = bought(sandbox)
    response = api.delete(f"/saas/subscriptions/{subscription_id}")
    assert response.status_code == 202
    operation = follow(api, response.headers["Operation-Location"]).json()
    assert (operation["action"], operation["status"]) == ("Unsubscribe", "Succeeded")
    assert api.get(f"/saas/subscriptions/{subscription_id}").json()["saasSubscriptionStatus"] == "Unsubscribed"


def test_publisher_started_change_is_announced_as_partner(
    sandbox: Sandbox, api: httpx.Client, receiver: Receiver
) -> None:
    subscription_id = bought(sandbox)
    api.patch(f"/saas/subscriptions/{subscription_id}", json={"quantity": 4})
    delivered = receiver.wait_for(1)[0].body
    assert (delivered["action"], delivered["operationRequestSource"]) == ("ChangeQuantity", "Partner")


def test_a_sandbox_bug_answers_500_not_a_dropped_connection(
    sandbox: Sandbox, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(subscription_id: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(sandbox.marketplace, "get", broken)
    assert api.get("/saas/subscriptions/anything").status_code == 500
