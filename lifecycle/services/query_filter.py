"""What ops may ask for, parsed and refused at the edge: filters, page size, continuation tokens.

Every value is validated against what it can be (a status the marketplace has, a tenant
GUID, an id of the characters Partner Center allows, a small number) before anything is
read; the store then passes values as query parameters, never spliced into OData text. So
`status=Suspended' or '1' eq '1` is an unknown status (400), not every row.

A continuation token is base64url JSON `{"v": 1, "f": <fingerprint of the filters>, "a": <key
to resume after>}`: opaque to callers, refused if garbled or forged, and bound to the
filters that issued it (a token reused with other filters would silently skip rows).

A refused value raises `InvalidValue`: its message names the query parameter (the HTTP
API's words), and its `problem` alone lets the CLI name its own option instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from datetime import date, timedelta

from lifecycle.domain.model import Status, Subscription
from lifecycle.errors import InvalidQuery
from lifecycle.ports import Indexed, Lookup

# A page costs one index query plus a state read per row (every hit is checked against its
# state): a screenful by default keeps the first answer quick; `limit` asks for more.
DEFAULT_LIMIT, MAX_LIMIT = 25, 200
MAX_RENEWAL_DAYS = 3660  # ten years: the longest term is five
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # offer and plan ids as Partner Center allows them
_TOKEN_VERSION, _MAX_TOKEN = 1, 2048
_BOOLEANS = {"true": True, "false": False}
FILTERS = ("status", "offer", "plan", "tenant", "purchaser", "freeTrial", "test", "renewalsWithinDays")
PAGING = ("limit", "continuation")
IGNORED = ("code",)  # the function key, when it travels in the query string


class InvalidValue(InvalidQuery):
    """A value refused: "`name` `problem`", e.g. "tenantId 'x' is not a GUID"."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} {problem}")
        self.name = name
        self.problem = problem  # what is wrong with the value, without the parameter's name


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionFilter:
    """Every given criterion must hold; None: not asked."""

    status: Status | None = None
    offer: str | None = None
    plan: str | None = None
    tenant: str | None = None  # the beneficiary's tenant, lower case
    purchaser: str | None = None  # the purchaser's tenant, lower case
    free_trial: bool | None = None
    test: bool | None = None
    renewal_days: int | None = None  # renewals at risk: autoRenew off, active, term ends within N days

    def matches(self, subscription: Subscription, today: date) -> bool:
        s = subscription
        checks = [
            self.status is None or s.status is self.status,
            self.offer is None or s.offer_id == self.offer,
            self.plan is None or s.plan_id == self.plan,
            self.tenant is None or s.beneficiary_tenant_id.lower() == self.tenant,
            self.purchaser is None or s.purchaser_tenant_id.lower() == self.purchaser,
            self.free_trial is None or s.is_free_trial is self.free_trial,
            self.test is None or s.is_test is self.test,
            self.renewal_days is None or _at_risk(s, today + timedelta(days=self.renewal_days)),
        ]
        return all(checks)

    def lookup(self, today: date) -> Lookup | None:
        """The index to read: the most selective one asked for; None: no index fits (a full scan)."""
        if self.tenant is not None:
            return Lookup(Indexed.TENANT, self.tenant)
        if self.purchaser is not None:
            return Lookup(Indexed.PURCHASER, self.purchaser)
        if self.test:
            return Lookup(Indexed.TEST, "true")
        if self.free_trial:
            return Lookup(Indexed.FREE_TRIAL, "true")
        if self.renewal_days is not None:
            return Lookup(Indexed.RENEWAL, (today + timedelta(days=self.renewal_days)).isoformat())
        for field, value in ((Indexed.PLAN, self.plan), (Indexed.OFFER, self.offer), (Indexed.STATUS, self.status)):
            if value is not None:
                return Lookup(field, value)
        return None

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(astuple(self)).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionQuery:
    filter: SubscriptionFilter
    limit: int = DEFAULT_LIMIT
    after: str = ""  # from the continuation token: the key to resume after


def _at_risk(subscription: Subscription, last_day: date) -> bool:
    end = subscription.term.end
    active = subscription.status in (Status.SUBSCRIBED, Status.SUSPENDED)
    return active and not subscription.auto_renew and end is not None and end <= last_day


def parse_query(params: Mapping[str, str]) -> SubscriptionQuery:
    """A list query from query-string parameters (the CLI builds the same mapping)."""
    unknown = sorted(set(params) - set(FILTERS) - set(PAGING) - set(IGNORED))
    if unknown:
        raise InvalidQuery(f"unknown parameter {unknown[0]!r}: use {', '.join(FILTERS + PAGING)}")
    given = {name: value for name, value in params.items() if value != ""}
    status = given.get("status")
    chosen = SubscriptionFilter(
        status=None if status is None else parse_status(status),
        offer=None if "offer" not in given else parse_id(given["offer"], "offer"),
        plan=None if "plan" not in given else parse_id(given["plan"], "plan"),
        tenant=None if "tenant" not in given else parse_tenant(given["tenant"], "tenant"),
        purchaser=None if "purchaser" not in given else parse_tenant(given["purchaser"], "purchaser"),
        free_trial=_boolean("freeTrial", given.get("freeTrial")),
        test=_boolean("test", given.get("test")),
        renewal_days=_number("renewalsWithinDays", given.get("renewalsWithinDays"), 0, MAX_RENEWAL_DAYS),
    )
    limit = _number("limit", given.get("limit"), 1, MAX_LIMIT)
    after = "" if "continuation" not in given else decode_token(given["continuation"], chosen)
    return SubscriptionQuery(filter=chosen, limit=DEFAULT_LIMIT if limit is None else limit, after=after)


def parse_status(text: str) -> Status:
    by_name = {status.value.lower(): status for status in Status}
    found = by_name.get(text.strip().lower())
    if found is None:
        raise InvalidValue("status", f"{_quoted(text)} is not one of {', '.join(s.value for s in Status)}")
    return found


def parse_tenant(text: str, name: str = "tenantId") -> str:
    """A tenant id: a GUID, returned in lower case."""
    return parse_guid(text, name)


def parse_guid(text: str, name: str) -> str:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise InvalidValue(name, f"{_quoted(text)} is not a GUID") from None


def encode_token(chosen: SubscriptionFilter, after: str) -> str:
    raw = json.dumps({"v": _TOKEN_VERSION, "f": chosen.fingerprint(), "a": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_token(token: str, chosen: SubscriptionFilter) -> str:
    """The key a token resumes after; InvalidQuery if it is not one we issued for these filters."""
    if len(token) > _MAX_TOKEN or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise InvalidQuery("continuation is not a token this API issued (not base64url)")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidQuery("continuation is not a token this API issued (not base64url JSON)") from None
    if not isinstance(data, dict) or set(data) != {"v", "f", "a"} or not isinstance(data["a"], str):
        raise InvalidQuery("continuation is not a token this API issued (unexpected content)")
    if data["v"] != _TOKEN_VERSION:
        raise InvalidQuery(f"continuation has version {data['v']!r}; this API issues version {_TOKEN_VERSION}")
    if data["f"] != chosen.fingerprint():
        raise InvalidQuery("continuation was issued for other filters: repeat the first request with these filters")
    return data["a"]


def parse_id(text: str, name: str) -> str:
    """An offer or plan id."""
    if not _ID.fullmatch(text):
        raise InvalidValue(name, f"{_quoted(text)}: up to 100 letters, digits, '.', '_' or '-'")
    return text


def _boolean(name: str, text: str | None) -> bool | None:
    if text is None:
        return None
    found = _BOOLEANS.get(text.strip().lower())
    if found is None:
        raise InvalidValue(name, f"{_quoted(text)}: use true or false")
    return found


def _number(name: str, text: str | None, low: int, high: int) -> int | None:
    if text is None:
        return None
    if not re.fullmatch(r"\s*\d{1,9}\s*", text) or not low <= int(text) <= high:
        raise InvalidValue(name, f"{_quoted(text)}: a whole number from {low} to {high}")
    return int(text)


def _quoted(text: str) -> str:
    # Echo enough of a bad value to recognise it, never a page of it.
    return repr(text if len(text) <= 60 else text[:57] + "...")
