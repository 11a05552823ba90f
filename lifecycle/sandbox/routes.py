"""The Fulfillment API v2's routes, mapped onto the marketplace's calls.

Paths under the API base (`.../api`), exactly Microsoft's:

    POST   /saas/subscriptions/resolve                       x-ms-marketplace-token
    POST   /saas/subscriptions/{id}/activate
    GET    /saas/subscriptions[?continuationToken=]          @nextLink; empty body if none
    GET    /saas/subscriptions/{id}
    GET    /saas/subscriptions/{id}/listAvailablePlans
    PATCH  /saas/subscriptions/{id}                          planId xor quantity -> 202
    DELETE /saas/subscriptions/{id}                          -> 202
    GET    /saas/subscriptions/{id}/operations
    GET    /saas/subscriptions/{id}/operations/{opId}
    PATCH  /saas/subscriptions/{id}/operations/{opId}        {"status": "Success"|"Failure"}

Transport concerns (auth, api-version, faults, request ids) live in `http_api`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from lifecycle.sandbox.errors import SandboxError, bad_request
from lifecycle.sandbox.marketplace import PARTNER, Marketplace

API_VERSION = "2018-08-31"


@dataclass(frozen=True, slots=True)
class Request:
    """What a route needs of an HTTP request; `path` is relative to the API base."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    api_url: str

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise bad_request("The request body is not valid JSON", "body", "InvalidJson") from None

    def operation_location(self, subscription_id: str, operation_id: str) -> str:
        path = f"/saas/subscriptions/{subscription_id}/operations/{operation_id}"
        return f"{self.api_url}{path}?api-version={API_VERSION}"


@dataclass(frozen=True, slots=True)
class Response:
    """A route's answer, before the transport adds request ids."""

    status: int
    body: object | None = None  # JSON; None: an empty body
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Marketplace, Request, re.Match[str]], Response]


def _resolve(market: Marketplace, request: Request, _: re.Match[str]) -> Response:
    token = request.headers.get("x-ms-marketplace-token", "")
    if not token:
        raise bad_request("The x-ms-marketplace-token header is required", "x-ms-marketplace-token")
    return Response(200, market.resolve(token))


def _activate(market: Marketplace, request: Request, match: re.Match[str]) -> Response:
    body = request.json()
    plan_id = body.get("planId") if isinstance(body, dict) else None
    # The spec still lists planId (+quantity); newer docs say only the id matters.
    market.activate(match["id"], plan_id if isinstance(plan_id, str) and plan_id else None)
    return Response(200)


def _list(market: Marketplace, request: Request, _: re.Match[str]) -> Response:
    continuation = request.query.get("continuationToken")
    page, following = market.list_page(continuation)
    if not page and not continuation:
        return Response(200)  # Microsoft answers an empty body when there is nothing at all
    body: dict[str, Any] = {"subscriptions": page}
    if following is not None:
        token = quote(following, safe="")
        body["@nextLink"] = f"{request.api_url}/saas/subscriptions/?continuationToken={token}&api-version={API_VERSION}"
    return Response(200, body)


def _get(market: Marketplace, _: Request, match: re.Match[str]) -> Response:
    return Response(200, market.get(match["id"]))


def _plans(market: Marketplace, _: Request, match: re.Match[str]) -> Response:
    return Response(200, {"plans": market.list_available_plans(match["id"])})


def _update(market: Marketplace, request: Request, match: re.Match[str]) -> Response:
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object with planId or quantity", "body")
    given = [name for name in ("planId", "quantity") if body.get(name) not in (None, "")]
    if len(given) != 1:
        raise bad_request("Exactly one of planId and quantity must be given", "body")
    if given == ["planId"]:
        operation = market.change_plan(match["id"], body["planId"], source=PARTNER)
    else:
        operation = market.change_quantity(match["id"], body["quantity"], source=PARTNER)
    return Response(202, headers={"Operation-Location": request.operation_location(match["id"], operation["id"])})


def _delete(market: Marketplace, request: Request, match: re.Match[str]) -> Response:
    operation = market.delete(match["id"], source=PARTNER)
    return Response(202, headers={"Operation-Location": request.operation_location(match["id"], operation["id"])})


def _operations(market: Marketplace, _: Request, match: re.Match[str]) -> Response:
    return Response(200, {"operations": market.operations(match["id"])})


def _operation(market: Marketplace, _: Request, match: re.Match[str]) -> Response:
    return Response(200, market.get_operation(match["id"], match["op"]))


def _acknowledge(market: Marketplace, request: Request, match: re.Match[str]) -> Response:
    body = request.json()
    status = body.get("status") if isinstance(body, dict) else None
    market.patch_operation(match["id"], match["op"], status)
    return Response(200)


_SUB = r"/saas/subscriptions/(?P<id>[^/]+)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Route]]] = [
    (re.compile(r"^/saas/subscriptions/resolve$"), {"POST": _resolve}),
    (re.compile(r"^/saas/subscriptions$"), {"GET": _list}),
    (re.compile(_SUB + r"/activate$"), {"POST": _activate}),
    (re.compile(_SUB + r"/listAvailablePlans$"), {"GET": _plans}),
    (re.compile(_SUB + r"/operations$"), {"GET": _operations}),
    (re.compile(_SUB + r"/operations/(?P<op>[^/]+)$"), {"GET": _operation, "PATCH": _acknowledge}),
    (re.compile(_SUB + r"$"), {"GET": _get, "PATCH": _update, "DELETE": _delete}),
]


def dispatch(market: Marketplace, request: Request) -> Response:
    """Run the route for `request`; SandboxError for refusals, 404/405 for unknown routes."""
    path = request.path.rstrip("/") or "/"
    for pattern, methods in ROUTES:
        match = pattern.match(path)
        if match is None:
            continue
        route = methods.get(request.method)
        if route is None:
            raise SandboxError(405, "MethodNotAllowed", f"{request.method} is not supported on {path}")
        return route(market, request, match)
    raise SandboxError(404, "NotFound", f"No resource at {path}")
