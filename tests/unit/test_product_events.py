"""Product events: the schema, stable ids, and the signature recipe."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

from lifecycle.domain.events import ChangePlan
from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Status, Subscription, Term
from lifecycle.product.events import EVENT_TYPES, SPEC_VERSION, build_event, event_id, proposal_body
from lifecycle.product.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers, verify

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SUB = Subscription(id="sub-1", offer_id="contoso-seats", plan_id="team", quantity=5, status=Status.SUBSCRIBED,
                   term=Term("P1M", date(2026, 5, 1), date(2026, 5, 31)), beneficiary_tenant_id="tenant-1")


def test_an_event_carries_the_versioned_schema() -> None:
    body = json.loads(build_event(ChangeKind.PLAN_CHANGED, SUB, operation_id="op-1", at=AT).body)
    assert body["specVersion"] == SPEC_VERSION == "1"
    assert (body["type"], body["operationId"], body["occurredAt"]) == (
        "subscription.planChanged", "op-1", "2026-05-01T12:00:00.000Z")
    assert body["subscription"] == {
        "id": "sub-1", "name": "", "offerId": "contoso-seats", "planId": "team", "quantity": 5,
        "status": "Subscribed", "beneficiaryTenantId": "tenant-1", "purchaserTenantId": "",
        "term": {"unit": "P1M", "startDate": "2026-05-01", "endDate": "2026-05-31"},
        "autoRenew": False, "isFreeTrial": False, "isTest": False, "isCsp": False,
    }


def test_every_change_kind_has_an_event_type() -> None:
    assert set(EVENT_TYPES) == set(ChangeKind)


def test_the_event_id_is_stable_per_subscription_operation_and_change() -> None:
    first = build_event(ChangeKind.SUSPENDED, SUB, operation_id="op-1", at=AT)
    later = build_event(ChangeKind.SUSPENDED, SUB, operation_id="op-1", at=datetime(2027, 1, 1, tzinfo=UTC))
    assert first.id == later.id == event_id("sub-1", "op-1", ChangeKind.SUSPENDED)
    assert event_id("sub-1", "op-1", ChangeKind.RESYNCED) != first.id
    assert event_id("sub-2", "op-1", ChangeKind.SUSPENDED) != first.id


def test_a_proposal_names_the_target_and_the_current_subscription() -> None:
    event = ChangePlan(operation_id="op-2", subscription_id="sub-1", plan_id="business")
    body = json.loads(proposal_body(event, SUB, at=AT))
    assert body["type"] == "subscription.changeProposed"
    assert body["proposed"] == {"action": "ChangePlan", "planId": "business", "quantity": 5}
    assert body["subscription"]["planId"] == "team"


def test_a_signature_verifies_with_the_secret_within_the_window() -> None:
    headers = signed_headers("s3cret", b'{"a":1}', now=1_000_000, event_id="evt_1")
    assert verify("s3cret", b'{"a":1}', headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=1_000_100)


def test_a_tampered_body_another_secret_or_a_stale_timestamp_fails() -> None:
    headers = signed_headers("s3cret", b'{"a":1}', now=1_000_000, event_id="evt_1")
    stamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert not verify("s3cret", b'{"a":2}', stamp, signature, now=1_000_000)
    assert not verify("other", b'{"a":1}', stamp, signature, now=1_000_000)
    assert not verify("s3cret", b'{"a":1}', stamp, signature, now=1_000_301)
    assert not verify("s3cret", b'{"a":1}', str(int(stamp) + 1), signature, now=1_000_000)
    assert not verify("s3cret", b'{"a":1}', "soon", signature, now=1_000_000)


def test_any_of_several_signatures_verifies_during_a_secret_rotation() -> None:
    new = signed_headers("new", b"{}", now=5, event_id="e")[SIGNATURE_HEADER]
    old = signed_headers("old", b"{}", now=5, event_id="e")[SIGNATURE_HEADER]
    assert verify("old", b"{}", "5", f"{new}, {old}", now=5)


def test_a_purchase_is_csp_when_a_partner_bought_it_for_a_customer() -> None:
    # A real CSP purchase says sandboxType "None": the differing tenants are its sign.
    def csp(purchaser: str, sandbox_type: str = "None") -> bool:
        bought = replace(SUB, purchaser_tenant_id=purchaser, sandbox_type=sandbox_type)
        body = json.loads(build_event(ChangeKind.ACTIVATED, bought, operation_id="op", at=AT).body)
        return bool(body["subscription"]["isCsp"])

    assert csp("partner-tenant")
    assert csp("TENANT-1", sandbox_type="Csp")  # a CSP integration sandbox's purchase
    assert not csp("TENANT-1")  # the customer bought it: the same tenant, in any case
    assert not csp("")  # no purchaser given: nothing says a partner bought it
