"""The product's veto: its answer counts, a late or broken one counts as the configured default.

A real loopback HTTP server plays the product; "late" is a server that sleeps past the budget.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifecycle.domain.events import ChangePlan, ChangeQuantity
from lifecycle.domain.model import Status, Subscription
from lifecycle.product.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from lifecycle.product.veto import MAX_ANSWER_BYTES, MAX_REASON_CHARS, HttpVeto
from lifecycle.sandbox import ManualClock
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.policy import ChangePolicy
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.unit.product_server import ProductServer

SUB = Subscription(id="sub-1", offer_id="contoso-seats", plan_id="team", quantity=5, status=Status.SUBSCRIBED)
CHANGE = ChangePlan(operation_id="op-1", subscription_id="sub-1", plan_id="business")


@pytest.fixture
def product() -> Iterator[ProductServer]:
    with ProductServer() as server:
        yield server


def veto(product: ProductServer, *, default_accept: bool = True) -> HttpVeto:
    return HttpVeto(product.url, "s3cret", ManualClock(), default_accept=default_accept)


def test_a_refusal_carries_the_products_reason(product: ProductServer) -> None:
    product.answer = {"accept": False, "reason": "plan business is not sold in your region"}
    answer = veto(product).review(CHANGE, SUB, timeout=2)
    assert (answer.accept, answer.reason) == (False, "the product refused: plan business is not sold in your region")


def test_the_request_is_signed_and_names_the_change(product: ProductServer) -> None:
    assert veto(product).review(CHANGE, SUB, timeout=2).accept
    [(headers, body)] = product.received
    assert verify("s3cret", body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER],
                  now=float(headers[TIMESTAMP_HEADER]))
    assert product.bodies()[0]["proposed"] == {"action": "ChangePlan", "planId": "business", "quantity": 5}


def test_a_late_answer_counts_as_the_default_accept(product: ProductServer) -> None:
    product.delay, product.answer = 1.0, {"accept": False, "reason": "too late to matter"}
    answer = veto(product).review(CHANGE, SUB, timeout=0.2)
    assert answer.accept
    assert "ReadTimeout" in answer.reason
    assert "accepted by default" in answer.reason


def test_a_late_answer_counts_as_the_default_reject_when_so_configured(product: ProductServer) -> None:
    product.delay = 1.0
    answer = veto(product, default_accept=False).review(CHANGE, SUB, timeout=0.2)
    assert not answer.accept
    assert "refused by default" in answer.reason


def test_an_answer_trickled_past_the_budget_counts_as_the_default(product: ProductServer) -> None:
    # Each byte comes well within the budget; the whole answer does not.
    product.trickle, product.answer = 0.02, {"accept": False, "reason": "dripped"}
    answer = veto(product).review(CHANGE, SUB, timeout=0.3)
    assert answer.accept
    assert "AnswerTooSlow" in answer.reason


def test_a_long_reason_is_kept_to_its_bound_on_one_line(product: ProductServer) -> None:
    product.answer = {"accept": False, "reason": "no\n" + "x" * 4_000}
    answer = veto(product).review(CHANGE, SUB, timeout=2)
    assert not answer.accept
    assert answer.reason == "the product refused: no " + "x" * (MAX_REASON_CHARS - 3)


def test_an_answer_too_large_counts_as_the_default(product: ProductServer) -> None:
    product.answer = {"accept": False, "reason": "x" * (MAX_ANSWER_BYTES + 1)}
    answer = veto(product).review(CHANGE, SUB, timeout=2)
    assert answer.accept
    assert "ValueError" in answer.reason


def test_an_error_status_or_an_unreadable_answer_counts_as_the_default(product: ProductServer) -> None:
    product.status = 500
    assert veto(product, default_accept=False).review(CHANGE, SUB, timeout=2).reason.startswith(
        "the product did not answer (HTTP 500)")
    product.status, product.answer = 200, {"accept": "yes"}
    assert not veto(product, default_accept=False).review(CHANGE, SUB, timeout=2).accept


def test_no_time_left_takes_the_default_without_asking(product: ProductServer) -> None:
    assert veto(product, default_accept=False).review(CHANGE, SUB, timeout=0).accept is False
    assert product.received == []


def test_the_policy_asks_the_veto_only_for_changes_its_own_checks_accept(product: ProductServer) -> None:
    market = Marketplace(auto_accept_seconds=None)
    bought, _ = market.purchase("contoso-seats", "team", 5, activated=True)
    api = InProcessMarketplaceApi(market)
    product.answer = {"accept": False, "reason": "no"}
    policy = ChangePolicy(api, veto=veto(product), veto_timeout_seconds=2)
    too_many = ChangeQuantity(operation_id="op-2", subscription_id=bought["id"], quantity=500)
    assert "outside plan" in policy.check(too_many, None).reason
    assert product.received == []
    fits = ChangeQuantity(operation_id="op-3", subscription_id=bought["id"], quantity=7)
    verdict = policy.check(fits, None)
    assert (verdict.accepted, verdict.reason) == (False, "the product refused: no")


def test_the_policy_gives_the_veto_only_what_is_left_of_its_window(product: ProductServer) -> None:
    market = Marketplace(auto_accept_seconds=None)
    bought, _ = market.purchase("contoso-seats", "team", 5, activated=True)
    ticks = iter([0.0, 100.0, 100.0, 100.0])  # the API calls "took" 100 s of a 7 s window
    policy = ChangePolicy(InProcessMarketplaceApi(market), veto=veto(product, default_accept=False),
                          monotonic=lambda: next(ticks))
    verdict = policy.check(ChangeQuantity(operation_id="op-4", subscription_id=bought["id"], quantity=7), None)
    assert not verdict.accepted
    assert "no time left" in verdict.reason
    assert product.received == []
