"""The query service: the questions ops and the product ask of our tables.

    subscriptions(query)   a page of the subscriptions matching every filter, and a token for the next
    subscription(id)       one subscription's current state
    history(id)            its history, newest first
    entitlements(tenant)   what a customer tenant may use now: per offer, its latest Subscribed subscription

Hits come from the ops index (`SubscriptionStore.find`) with their current state; every
filter is judged on that state, so an index row that lags a commit never shows a wrong
subscription. Inputs are validated in `query_filter` (InvalidQuery: 400 at the edges).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Status, Subscription
from lifecycle.errors import UnknownSubscription
from lifecycle.ports import Clock, Indexed, Lookup, SubscriptionStore
from lifecycle.services.query_filter import SubscriptionQuery, encode_token, parse_guid

# Hits read per request at most, matching or not: a rare combination of filters answers a short
# page and a token instead of scanning the whole table in one request.
MAX_EXAMINED = 2000
_MIN_BATCH = 20
_ENTITLEMENT_BATCH = 200


@dataclass(frozen=True, slots=True)
class SubscriptionPage:
    subscriptions: tuple[Subscription, ...]
    continuation: str | None  # None: this was the last page


@dataclass(frozen=True, slots=True, kw_only=True)
class Entitlement:
    """One offer a tenant may use now, and the subscription that grants it."""

    offer_id: str
    plan_id: str
    quantity: int | None
    subscription_id: str
    term_end: date | None
    is_free_trial: bool
    is_test: bool


class QueryService:
    """Read-only answers over the subscription store."""

    def __init__(self, store: SubscriptionStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def subscriptions(self, query: SubscriptionQuery) -> SubscriptionPage:
        """A page of matches. A full page looks one match ahead, so a token always leads to more
        rows; only a page cut short by MAX_EXAMINED may hand out a token whose next page is empty."""
        today = self._clock.now().date()
        lookup = query.filter.lookup(today)
        found: list[Subscription] = []
        after, examined, last_shown = query.after, 0, query.after
        while examined < MAX_EXAMINED:
            wanted = max(query.limit + 1 - len(found), _MIN_BATCH)
            hits = self._store.find(lookup, after=after, limit=wanted)
            for hit in hits:
                after, examined = hit.key, examined + 1
                if hit.subscription is not None and query.filter.matches(hit.subscription, today):
                    if len(found) == query.limit:  # one more matches: the next page starts with it
                        return SubscriptionPage(tuple(found), encode_token(query.filter, last_shown))
                    found.append(hit.subscription)
                    last_shown = hit.key
            if len(hits) < wanted:
                return SubscriptionPage(tuple(found), None)
        # Cut short: every hit after the last row shown was examined and did not match.
        return SubscriptionPage(tuple(found), encode_token(query.filter, after))

    def subscription(self, subscription_id: str) -> tuple[Subscription, int]:
        """The current state and its version (history entries so far)."""
        # Refused before any read; read as the marketplace spells its ids, whatever case was typed.
        snapshot = self._store.load(parse_guid(subscription_id, "subscription id"))
        if snapshot is None:
            raise UnknownSubscription(f"subscription {subscription_id} is not known here")
        return snapshot.subscription, snapshot.version

    def history(self, subscription_id: str) -> list[HistoryEntry]:
        """Every history entry, newest first; UnknownSubscription if there is no such subscription."""
        self.subscription(subscription_id)
        return self._store.history(parse_guid(subscription_id, "subscription id"))

    def entitlements(self, tenant_id: str) -> list[Entitlement]:
        """Per offer, the tenant's latest Subscribed subscription (by term start), ordered by offer."""
        tenant = parse_guid(tenant_id, "tenantId")
        latest: dict[str, Subscription] = {}
        after = ""
        while True:
            hits = self._store.find(Lookup(Indexed.TENANT, tenant), after=after, limit=_ENTITLEMENT_BATCH)
            for hit in hits:
                subscription = hit.subscription
                if subscription is None or subscription.beneficiary_tenant_id.lower() != tenant:
                    continue
                if subscription.status is not Status.SUBSCRIBED:
                    continue  # suspended, ended or not yet activated: nothing to use
                current = latest.get(subscription.offer_id)
                if current is None or _newer(subscription, current):
                    latest[subscription.offer_id] = subscription
            if len(hits) < _ENTITLEMENT_BATCH:
                break
            after = hits[-1].key
        return [_entitlement(latest[offer]) for offer in sorted(latest)]


def _newer(candidate: Subscription, current: Subscription) -> bool:
    """A later order replaces an earlier one: the later term start, then the later change, then the id."""

    def order(s: Subscription) -> tuple[date, datetime, str]:
        changed = s.last_operation_at or s.changed_at.status or datetime.min.replace(tzinfo=UTC)
        return s.term.start or date.min, changed.astimezone(UTC), s.id

    return order(candidate) > order(current)


def _entitlement(subscription: Subscription) -> Entitlement:
    return Entitlement(
        offer_id=subscription.offer_id,
        plan_id=subscription.plan_id,
        quantity=subscription.quantity,
        subscription_id=subscription.id,
        term_end=subscription.term.end,
        is_free_trial=subscription.is_free_trial,
        is_test=subscription.is_test,
    )
