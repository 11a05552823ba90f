"""Reading the Fulfillment API's answers: pages, operation lists, Operation-Location, errors.

Success bodies go through `lifecycle.parsing` (lenient, once); what is read here is
the envelope around them. Error bodies are free-form (`{"error": {...}}`,
`{"Error": {...}}`, `{"code": ...}`, plain text or nothing), so a message is dug out
leniently and a 4xx becomes the matching `MarketplaceRejected`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import httpx

from lifecycle.domain.model import Plan
from lifecycle.errors import (
    InvalidPayload,
    MarketplaceBadRequest,
    MarketplaceConflict,
    MarketplaceForbidden,
    MarketplaceNotFound,
    MarketplaceRejected,
)
from lifecycle.parsing import load_json, parse_plan


def page(body: bytes) -> tuple[list[Mapping[str, Any]], str]:
    """One page of list subscriptions: its items and `@nextLink` ("" when last). No body: no subscriptions."""
    if not body.strip():
        return [], ""
    data = load_json(body)
    items = data.get("subscriptions")
    link = data.get("@nextLink") or data.get("nextLink")
    return _objects(items, "subscriptions"), link.strip() if isinstance(link, str) else ""


def plans(data: Mapping[str, Any]) -> list[Plan]:
    """The plans of `{"plans": [...]}`. A body without the list is unreadable, not an empty catalog:
    read as one, it would refuse every plan and seat change as "not in the offer"."""
    listed = data.get("plans")
    if listed is None:
        raise InvalidPayload("listAvailablePlans answered without a plans list")
    return [parse_plan(item) for item in _objects(listed, "plans")]


def operations(body: bytes) -> list[Mapping[str, Any]]:
    """`{"operations": [...]}` as documented, or the bare array an emulator was seen to send."""
    if not body.strip():
        return []
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidPayload("operations body is not JSON") from None
    return _objects(data.get("operations") if isinstance(data, dict) else data, "operations")


def _objects(value: object, name: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidPayload(f"{name} is {type(value).__name__}, expected a list")
    return [item for item in value if isinstance(item, dict)]


def operation_id(response: httpx.Response) -> str:
    """The last path segment of `Operation-Location`, its query dropped."""
    location = response.headers.get("operation-location", "").strip()
    path = httpx.URL(location).raw_path.decode("ascii").split("?", 1)[0] if location else ""
    segment = unquote(path.rstrip("/").rsplit("/", 1)[-1])  # split before decoding: an encoded '/' is data
    if not segment:
        raise InvalidPayload(f"HTTP {response.status_code} without a usable Operation-Location header")
    return segment


_REJECTIONS: dict[int, type[MarketplaceRejected]] = {
    400: MarketplaceBadRequest, 403: MarketplaceForbidden, 404: MarketplaceNotFound, 409: MarketplaceConflict,
}
_FORBIDDEN_HINT = (
    "the app (client) id or tenant of our token probably do not match the Microsoft Entra app in the "
    "offer's Technical configuration in Partner Center"
)


def rejection(response: httpx.Response, request_id: str) -> MarketplaceRejected:
    """The error for a 4xx answer, its message dug out of the body."""
    status = response.status_code
    return rejected(status, f"HTTP {status} {response.reason_phrase}: {_error_message(response)}", request_id)


def rejected(status: int, message: str, request_id: str = "") -> MarketplaceRejected:
    """The MarketplaceRejected subclass for `status`; a 403 says what usually causes it."""
    if status == 403:
        message = f"{message}; {_FORBIDDEN_HINT}"
    return _REJECTIONS.get(status, MarketplaceRejected)(message, status=status, request_id=request_id)


def _error_message(response: httpx.Response) -> str:
    """A readable message from a free-form error body: {"error": {...}}, {"Error": ...}, {"code": ...} or text."""
    try:
        data: Any = json.loads(response.content)
    except ValueError:
        data = response.text
    for _ in range(3):  # unwrap {"error": {"error": ...}} nesting, but not forever
        if not isinstance(data, dict):
            break
        inner = _pick(data, "error")
        if inner is None:
            break
        data = inner
    if isinstance(data, dict):
        code, message = _pick(data, "code"), _pick(data, "message") or _pick(data, "errorMessage")
        data = ": ".join(str(part) for part in (code, message) if part) or json.dumps(data)[:200]
    text = " ".join(str(data or "").split())
    return text[:300] or "no details"


def _pick(data: Mapping[str, Any], name: str) -> Any:
    """`data[name]` whatever the key's capitalisation (both `error` and `Error` are sent)."""
    return next((value for key, value in data.items() if key.lower() == name.lower()), None)
