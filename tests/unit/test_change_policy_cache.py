"""The webhook policy's plan catalogs are cached per subscription, and only the latest ones are kept."""

from __future__ import annotations

from lifecycle.domain.events import ChangePlan
from lifecycle.parsing import parse_subscription
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.policy import ChangePolicy
from tests.fakes.marketplace import InProcessMarketplaceApi


def test_the_least_recently_used_catalog_is_dropped_past_the_bound() -> None:
    marketplace = Marketplace()
    api = InProcessMarketplaceApi(marketplace)
    policy = ChangePolicy(api, max_cached=2)
    subscriptions = [marketplace.purchase("contoso-seats", "team", 5, activated=True)[0] for _ in range(3)]
    states = [parse_subscription(s, str(s["id"])) for s in subscriptions]

    def judge(n: int) -> int:
        """Judge a plan change of subscription n; the catalog reads made so far."""
        assert policy.check(ChangePlan(operation_id=f"op-{n}", subscription_id=states[n].id, plan_id="business"),
                            states[n]).accepted
        return sum(1 for name, _ in api.calls if name == "list_available_plans")

    assert [judge(0), judge(1), judge(0), judge(2)] == [1, 2, 2, 3]  # 1 was the least recently used
    assert judge(0) == 3  # still cached
    assert judge(1) == 4  # dropped: read again
