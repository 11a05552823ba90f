"""Injected faults: the API's bad days (throttling, outages, stalls) on demand."""

from __future__ import annotations

import httpx
import pytest

from lifecycle.sandbox import Sandbox


def bought(sandbox: Sandbox) -> str:
    return str(sandbox.marketplace.purchase("contoso-flat", "basic", activated=True)[0]["id"])


def test_throttling_answers_429_with_retry_after_the_given_times(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.marketplace.inject(status=429, retry_after=1, times=2)
    answers = [api.get("/saas/subscriptions") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "1"
    assert answers[0].headers["x-ms-requestid"]


def test_outage_answers_a_gateway_page_once(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.marketplace.inject(status=503)
    failed = api.get("/saas/subscriptions")
    assert failed.status_code == 503
    assert failed.headers["content-type"].startswith("text/html")  # not JSON: parse leniently
    assert api.get("/saas/subscriptions").status_code == 200


def test_delay_times_the_client_out_then_service_resumes(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.marketplace.inject(delay=0.4)
    with pytest.raises(httpx.ReadTimeout):
        api.get("/saas/subscriptions", timeout=0.1)
    assert api.get("/saas/subscriptions").status_code == 200


def test_faults_can_target_a_path_and_method(sandbox: Sandbox, api: httpx.Client) -> None:
    subscription_id = bought(sandbox)
    sandbox.marketplace.inject(status=500, path="/operations", method="GET")
    assert api.get(f"/saas/subscriptions/{subscription_id}").status_code == 200
    assert api.get(f"/saas/subscriptions/{subscription_id}/operations").status_code == 500
    assert api.get(f"/saas/subscriptions/{subscription_id}/operations").status_code == 200
    assert sandbox.marketplace.faults.pending == 0
    assert [(method, path) for method, path, _ in sandbox.marketplace.faults.applied] == [
        ("GET", f"/api/saas/subscriptions/{subscription_id}/operations")
    ]


def test_faults_come_before_authentication(sandbox: Sandbox) -> None:
    # An outage at the front door answers even an unauthenticated call with the outage.
    sandbox.marketplace.inject(status=502)
    response = httpx.get(f"{sandbox.api_url}/saas/subscriptions", params={"api-version": "2018-08-31"})
    assert response.status_code == 502
