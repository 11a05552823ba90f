"""Fingerprints from raw fields: a list item's equals that of the subscription it parses into."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.domain.fingerprint import fingerprint
from lifecycle.domain.model import Status, Subscription, Term
from lifecycle.domain.reconcile import COMPARED
from lifecycle.errors import InvalidPayload
from lifecycle.parsing import parse_listed, parse_subscription

OTHER_VALUES: dict[str, Any] = {
    "status": Status.SUSPENDED, "plan_id": "business", "quantity": 6, "term": Term("P1M", date(2026, 1, 1), None),
    "is_free_trial": True, "auto_renew": False, "offer_id": "other-offer", "name": "renamed",
    "publisher_id": "fabrikam", "beneficiary_tenant_id": "t-2", "purchaser_tenant_id": "t-3", "is_test": True,
    "sandbox_type": "Csp",
}
_ABSENT = object()  # a field the item leaves out


def test_every_compared_field_has_a_changed_value() -> None:
    assert set(OTHER_VALUES) == set(COMPARED)


@pytest.mark.parametrize("name", COMPARED)
def test_the_fingerprint_changes_with_each_compared_field(name: str) -> None:
    ours = Subscription(id="s-1", plan_id="team", quantity=5, status=Status.SUBSCRIBED, auto_renew=True,
                        term=Term("P1M", date(2026, 1, 1), date(2026, 2, 1)))
    assert fingerprint(ours) != fingerprint(replace(ours, **{name: OTHER_VALUES[name]}))


def padded(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, f" {text} ", f"{text}\t"])


def optional(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(_ABSENT), values)


STATUSES = st.sampled_from([s.value for s in Status]).flatmap(
    lambda value: st.sampled_from([value, value.lower(), value.upper(), f" {value} "]))
QUANTITIES = st.one_of(st.none(), st.just(""), st.integers(0, 10**6), st.integers(0, 999).map(str),
                       st.integers(0, 99).map(lambda n: f" {n} "), st.just(7.0))
DATES = st.one_of(st.none(), st.just(""), st.dates(date(2020, 1, 1), date(2030, 12, 31)).map(date.isoformat).flatmap(
    lambda day: st.sampled_from([day, f"{day}T00:00:00Z", f"{day}T00:00:00.0000000Z"])))
FLAGS = st.sampled_from([True, False, "true", "True", "false", " TRUE ", None, 0, 1])
TEXTS = st.one_of(st.none(), st.just(""), st.sampled_from(["team", "contoso", "Csp", "None"]).flatmap(padded),
                  st.integers(0, 9))


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    term = {"termUnit": draw(optional(TEXTS)), "startDate": draw(optional(DATES)), "endDate": draw(optional(DATES))}
    fields = {
        "id": draw(padded("6f9a2c54-0e55-4a3b-8a3e-4c8d2d3e9b10")),
        "name": draw(optional(TEXTS)), "publisherId": draw(optional(TEXTS)), "offerId": draw(optional(TEXTS)),
        "planId": draw(optional(TEXTS)), "quantity": draw(optional(QUANTITIES)),
        "saasSubscriptionStatus": draw(STATUSES),
        "term": draw(st.sampled_from([{k: v for k, v in term.items() if v is not _ABSENT}, None, _ABSENT])),
        "autoRenew": draw(optional(FLAGS)), "isFreeTrial": draw(optional(FLAGS)), "isTest": draw(optional(FLAGS)),
        "beneficiary": draw(optional(st.sampled_from([{"tenantId": " t-1 "}, {"tenantId": None}, {}, None, "t-1"]))),
        "purchaser": draw(optional(st.sampled_from([{"tenantId": "t-2", "emailId": "x"}, None]))),
        "sandboxType": draw(optional(TEXTS)), "unknownField": draw(optional(st.just({"a": 1}))),
    }
    return {key: value for key, value in fields.items() if value is not _ABSENT}


@given(items())
def test_a_listed_items_fingerprint_is_that_of_the_subscription_it_parses_into(item: dict[str, Any]) -> None:
    listed, parsed = parse_listed(item), parse_subscription(item)
    assert (listed.id, listed.status, listed.fingerprint) == (parsed.id, parsed.status, fingerprint(parsed))
    assert listed.parse() == parsed


@pytest.mark.parametrize(("field", "value"), [
    ("saasSubscriptionStatus", "Paused"), ("quantity", "seven"), ("id", " "), ("term", {"startDate": "soon"}),
])
def test_a_listed_item_is_refused_as_its_parsing_would_be(field: str, value: Any) -> None:
    item = {"id": "s-1", "saasSubscriptionStatus": "Subscribed", field: value}
    with pytest.raises(InvalidPayload) as parsing:
        parse_subscription(item)
    with pytest.raises(InvalidPayload) as listing:
        parse_listed(item)
    assert str(listing.value) == str(parsing.value)
