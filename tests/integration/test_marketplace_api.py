"""HttpMarketplaceApi + MsalTokenProvider against the marketplace sandbox, over loopback.

Real HTTP, real MSAL against the sandbox's Entra stand-in (TLS with the sandbox's own
certificate), real faults injected into the sandbox: 429 with Retry-After, 5xx, stalls
that outlast the client's timeout, 403. Retries record their pauses instead of sleeping,
except in the one test that measures that Retry-After is really waited for.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from lifecycle.domain.model import OperationStatus, Status
from lifecycle.errors import (
    MarketplaceBadRequest,
    MarketplaceConflict,
    MarketplaceForbidden,
    MarketplaceNotFound,
    MarketplaceUnavailable,
)
from lifecycle.marketplace import HttpMarketplaceApi, MsalTokenProvider, RetryPolicy, set_testing
from lifecycle.sandbox.server import Sandbox
from lifecycle.settings import Settings

SEATS, FLAT = "contoso-seats", "contoso-flat"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_faults(sandbox: Sandbox) -> Iterator[None]:
    previous = set_testing(False)  # the tests below record or measure pauses themselves
    sandbox.marketplace.faults.clear()
    yield
    sandbox.marketplace.faults.clear()
    set_testing(previous)


@pytest.fixture(scope="module")
def settings(sandbox: Sandbox) -> Settings:
    return Settings.from_env(sandbox.settings_env())


@pytest.fixture(scope="module")
def tokens(settings: Settings) -> MsalTokenProvider:
    return MsalTokenProvider(settings)


Pauses = list[float]


@pytest.fixture
def pauses() -> Pauses:
    """The pauses the retry policy asked for; it records them instead of sleeping."""
    return []


@pytest.fixture
def api(settings: Settings, tokens: MsalTokenProvider, pauses: Pauses) -> Iterator[HttpMarketplaceApi]:
    policy = RetryPolicy(max_attempts=4, base_delay=0.2, sleep=pauses.append)
    with HttpMarketplaceApi(settings.marketplace_api_url, tokens, retry=policy, timeout=5.0) as client:
        yield client


def active(sandbox: Sandbox, offer: str = SEATS, plan: str = "team", quantity: int | None = 3) -> str:
    subscription, _ = sandbox.marketplace.purchase(offer, plan, quantity if offer == SEATS else None, activated=True)
    return str(subscription["id"])


# --- endpoints -----------------------------------------------------------------------------

def test_resolve_takes_the_url_encoded_landing_page_token(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    subscription, token = sandbox.marketplace.purchase(SEATS, "business", 7)
    resolved = api.resolve(quote(token, safe=""))  # as it appears in ?token=...
    assert (resolved.subscription_id, resolved.plan_id, resolved.quantity) == (subscription["id"], "business", 7)
    assert resolved.subscription.status is Status.PENDING_FULFILLMENT_START


def test_resolve_refuses_an_unknown_token(api: HttpMarketplaceApi) -> None:
    with pytest.raises(MarketplaceBadRequest):
        api.resolve("bm90LWEtdG9rZW4%3D")


def test_activate_makes_the_subscription_subscribed(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    subscription, _ = sandbox.marketplace.purchase(FLAT, "standard")
    api.activate(subscription["id"], "standard")
    fetched = api.get_subscription(subscription["id"])
    assert fetched.status is Status.SUBSCRIBED
    assert fetched.term.start is not None
    assert fetched.quantity is None


def test_list_available_plans_shows_seat_bounds(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    plans = {plan.plan_id: plan for plan in api.list_available_plans(active(sandbox))}
    assert (plans["business"].min_quantity, plans["business"].max_quantity) == (5, 50)
    assert plans["business"].is_per_seat


def test_a_quantity_change_is_an_operation_that_success_applies(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    subscription_id = active(sandbox)
    operation_id = api.change_quantity(subscription_id, 8)
    assert [op.id for op in api.list_operations(subscription_id)] == [operation_id]
    assert api.get_operation(subscription_id, operation_id).status is OperationStatus.IN_PROGRESS
    api.update_operation(subscription_id, operation_id, success=True)
    assert api.get_operation(subscription_id, operation_id).status is OperationStatus.SUCCEEDED
    assert api.get_subscription(subscription_id).quantity == 8
    assert api.list_operations(subscription_id) == []


def test_a_plan_change_answered_failure_changes_nothing(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    subscription_id = active(sandbox, FLAT, "basic")
    operation_id = api.change_plan(subscription_id, "premium")
    api.update_operation(subscription_id, operation_id, success=False)
    assert api.get_operation(subscription_id, operation_id).status is OperationStatus.FAILED
    assert api.get_subscription(subscription_id).plan_id == "basic"


def test_delete_unsubscribes(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    subscription_id = active(sandbox)
    operation_id = api.delete_subscription(subscription_id)
    assert api.get_operation(subscription_id, operation_id).action == "Unsubscribe"
    assert api.get_subscription(subscription_id).status is Status.UNSUBSCRIBED


def test_refusals_map_to_their_errors(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    subscription_id = active(sandbox)
    with pytest.raises(MarketplaceNotFound):
        api.get_subscription("00000000-0000-0000-0000-000000000000")
    with pytest.raises(MarketplaceBadRequest, match="outside"):
        api.change_quantity(subscription_id, 11)
    operation_id = api.change_quantity(subscription_id, 4)
    api.update_operation(subscription_id, operation_id, success=True)
    with pytest.raises(MarketplaceConflict):
        api.update_operation(subscription_id, operation_id, success=True)


def test_paging_crosses_pages_of_odd_sizes(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    with Sandbox(page_size=7) as own:
        settings = Settings.from_env(own.settings_env())
        ids = {own.marketplace.purchase(FLAT, "basic")[0]["id"] for _ in range(23)}
        with HttpMarketplaceApi.from_settings(settings, MsalTokenProvider(settings)) as client:
            pages = list(client.list_subscriptions())
    assert [len(page) for page in pages] == [7, 7, 7, 2]
    assert {s.id for page in pages for s in page} == ids


def test_no_subscriptions_at_all_is_an_empty_listing() -> None:
    with Sandbox() as own:
        settings = Settings.from_env(own.settings_env())
        with HttpMarketplaceApi.from_settings(settings, MsalTokenProvider(settings)) as client:
            assert list(client.list_subscriptions()) == []


# --- faults --------------------------------------------------------------------------------

def test_429_is_retried_after_its_retry_after(sandbox: Sandbox, api: HttpMarketplaceApi, pauses: Pauses) -> None:
    subscription_id = active(sandbox)
    sandbox.marketplace.inject(status=429, retry_after=3, times=2)
    assert api.get_subscription(subscription_id).id == subscription_id
    assert pauses == [3.0, 3.0]


def test_retry_after_is_really_waited_for(sandbox: Sandbox, settings: Settings, tokens: MsalTokenProvider) -> None:
    subscription_id = active(sandbox)
    sandbox.marketplace.inject(status=429, retry_after=0.3, times=1)
    with HttpMarketplaceApi(settings.marketplace_api_url, tokens, retry=RetryPolicy(max_attempts=2)) as client:
        started = time.monotonic()
        client.get_subscription(subscription_id)
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.0


def test_5xx_then_success(sandbox: Sandbox, api: HttpMarketplaceApi, pauses: Pauses) -> None:
    subscription_id = active(sandbox)
    sandbox.marketplace.inject(status=503, times=1)
    sandbox.marketplace.inject(status=500, times=1)
    assert api.list_available_plans(subscription_id)
    assert len(pauses) == 2


def test_5xx_to_the_last_attempt_is_unavailable(sandbox: Sandbox, api: HttpMarketplaceApi) -> None:
    sandbox.marketplace.inject(status=502, times=4)
    with pytest.raises(MarketplaceUnavailable) as raised:
        api.get_subscription(active(sandbox))
    assert raised.value.status == 502
    assert sandbox.marketplace.faults.pending == 0


def test_a_timeout_then_success(sandbox: Sandbox, settings: Settings, tokens: MsalTokenProvider) -> None:
    subscription_id = active(sandbox)
    sandbox.marketplace.inject(delay=6.0, times=1)
    policy = RetryPolicy.no_wait(max_attempts=2)
    with HttpMarketplaceApi(settings.marketplace_api_url, tokens, retry=policy, timeout=0.3) as client:
        started = time.monotonic()
        assert client.get_subscription(subscription_id).id == subscription_id
        assert time.monotonic() - started < 4.5  # gave up on the 6-second stall, did not wait it out


def test_a_403_says_what_usually_causes_it(sandbox: Sandbox, api: HttpMarketplaceApi, pauses: Pauses) -> None:
    sandbox.marketplace.inject(status=403, times=1)
    with pytest.raises(MarketplaceForbidden, match="Technical configuration in Partner Center"):
        api.get_subscription(active(sandbox))
    assert pauses == []


# --- tokens --------------------------------------------------------------------------------

def test_a_wrong_client_secret_is_refused_without_retrying(sandbox: Sandbox, settings: Settings,
                                                           pauses: Pauses) -> None:
    wrong = dataclasses.replace(settings, client_secret="not-the-secret")
    policy = RetryPolicy(max_attempts=3, sleep=pauses.append)
    client = HttpMarketplaceApi(wrong.marketplace_api_url, MsalTokenProvider(wrong), retry=policy)
    with client, pytest.raises(MarketplaceForbidden, match="MARKETPLACE_CLIENT_SECRET") as raised:
        client.get_subscription(active(sandbox))
    assert "invalid_client" in str(raised.value)
    assert "not-the-secret" not in str(raised.value)
    assert pauses == []


def test_an_unknown_client_id_is_refused(settings: Settings) -> None:
    wrong = dataclasses.replace(settings, client_id="00000000-0000-0000-0000-000000000001")
    with pytest.raises(MarketplaceForbidden, match="unauthorized_client"):
        MsalTokenProvider(wrong).token()


def test_an_unknown_tenant_is_refused(settings: Settings) -> None:
    wrong = dataclasses.replace(settings, tenant_id="00000000-0000-0000-0000-000000000002")
    with pytest.raises(MarketplaceForbidden, match="tenant"):
        MsalTokenProvider(wrong).token()


def test_one_token_serves_many_calls(sandbox: Sandbox, settings: Settings) -> None:
    subscription_id = active(sandbox)
    before = sandbox.entra.tokens_issued
    with HttpMarketplaceApi.from_settings(settings, MsalTokenProvider(settings)) as client:
        for _ in range(25):
            client.get_subscription(subscription_id)
    assert sandbox.entra.tokens_issued - before == 1


def test_requests_ca_bundle_in_the_environment_does_not_override_the_sandbox_ca(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # would break the call if honoured
    assert MsalTokenProvider(settings).token()

