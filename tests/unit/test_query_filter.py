"""Ops filters, page sizes and continuation tokens: parsed, validated, refused with a precise message."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.domain.model import Status
from lifecycle.errors import InvalidQuery, PermanentError
from lifecycle.ports import Indexed, Lookup
from lifecycle.services.query_filter import (
    DEFAULT_LIMIT,
    SubscriptionFilter,
    decode_token,
    encode_token,
    parse_query,
)

TODAY = date(2026, 11, 1)


def test_every_filter_is_parsed_into_its_typed_value() -> None:
    tenant, purchaser = str(uuid.uuid4()), str(uuid.uuid4())
    query = parse_query({"status": "suspended", "offer": "contoso-seats", "plan": "team_1.b", "tenant": tenant.upper(),
                         "purchaser": purchaser, "freeTrial": "true", "test": "False", "renewalsWithinDays": "30",
                         "limit": "10", "code": "the-function-key"})
    assert query.filter == SubscriptionFilter(status=Status.SUSPENDED, offer="contoso-seats", plan="team_1.b",
                                              tenant=tenant, purchaser=purchaser, free_trial=True, test=False,
                                              renewal_days=30)
    assert (query.limit, query.after) == (10, "")


def test_no_parameters_ask_for_everything_with_the_default_page() -> None:
    query = parse_query({})
    assert (query.filter, query.limit) == (SubscriptionFilter(), DEFAULT_LIMIT)


def test_invalid_query_is_a_permanent_error() -> None:
    assert issubclass(InvalidQuery, PermanentError)


@pytest.mark.parametrize(("params", "message"), [
    ({"status": "Suspended' or '1' eq '1"}, "is not one of NotStarted, PendingFulfillmentStart, Subscribed"),
    ({"status": "Active"}, "status 'Active' is not one of"),
    ({"tenant": "not-a-guid"}, "tenant 'not-a-guid' is not a GUID"),
    ({"purchaser": "1' or '1' eq '1"}, "purchaser \"1' or '1' eq '1\" is not a GUID"),
    ({"offer": "x' or PartitionKey ne '"}, "offer \"x' or PartitionKey ne '\": up to 100 letters"),
    ({"plan": "a/b"}, "plan 'a/b': up to 100 letters"),
    ({"freeTrial": "yes"}, "freeTrial 'yes': use true or false"),
    ({"renewalsWithinDays": "-1"}, "renewalsWithinDays '-1': a whole number from 0 to 3660"),
    ({"renewalsWithinDays": "1e3"}, "a whole number"),
    ({"limit": "0"}, "limit '0': a whole number from 1 to 200"),
    ({"limit": "201"}, "limit '201'"),
    ({"stauts": "Suspended"}, "unknown parameter 'stauts': use status, offer"),
])
def test_invalid_values_are_refused_with_a_message_naming_them(params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidQuery, match=None) as refused:
        parse_query(params)
    assert message in str(refused.value)


def test_a_long_bad_value_is_echoed_cut_short() -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_query({"status": "x" * 5000})
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize(("chosen", "lookup"), [
    (SubscriptionFilter(status=Status.SUSPENDED, offer="o", tenant="t"), Lookup(Indexed.TENANT, "t")),
    (SubscriptionFilter(status=Status.SUSPENDED, plan="p", offer="o"), Lookup(Indexed.PLAN, "p")),
    (SubscriptionFilter(status=Status.SUSPENDED), Lookup(Indexed.STATUS, "Suspended")),
    (SubscriptionFilter(renewal_days=10, status=Status.SUBSCRIBED), Lookup(Indexed.RENEWAL, "2026-11-11")),
    (SubscriptionFilter(test=True, offer="o"), Lookup(Indexed.TEST, "true")),
    (SubscriptionFilter(free_trial=False), None),
    (SubscriptionFilter(), None),
])
def test_the_most_selective_index_asked_for_is_read(chosen: SubscriptionFilter, lookup: Lookup | None) -> None:
    assert chosen.lookup(TODAY) == lookup


@given(st.text(max_size=300))
def test_a_token_resumes_exactly_where_it_was_issued(after: str) -> None:
    chosen = SubscriptionFilter(status=Status.SUSPENDED)
    token = encode_token(chosen, after)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_token(token, chosen) == after
    assert parse_query({"status": "Suspended", "continuation": token}).after == after


def forged(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(("token", "message"), [
    ("not a token!", "not base64url"),
    ("AAAA", "not base64url JSON"),
    (forged(["a", "list"]), "unexpected content"),
    (forged({"v": 1, "f": "x", "a": 3}), "unexpected content"),
    (forged({"v": 1, "f": "x", "a": "k", "extra": 1}), "unexpected content"),
    (forged({"v": 9, "f": "x", "a": "k"}), "has version 9"),
    (forged({"v": 1, "f": "0" * 16, "a": "k"}), "issued for other filters"),
    ("A" * 5000, "not base64url"),
])
def test_garbled_or_forged_tokens_are_refused(token: str, message: str) -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_query({"status": "Suspended", "continuation": token})
    assert message in str(refused.value)


def test_a_token_reused_with_other_filters_is_refused() -> None:
    token = encode_token(SubscriptionFilter(status=Status.SUSPENDED), "k")
    with pytest.raises(InvalidQuery, match="issued for other filters"):
        parse_query({"status": "Subscribed", "continuation": token})
