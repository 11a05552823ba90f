"""The read-only ops API: subscriptions, one subscription, its events, a tenant's entitlements."""

from __future__ import annotations

import azure.functions as func

from lifecycle import bootstrap
from lifecycle.entrypoints import ops
from lifecycle.services.query import QueryService

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves its __init__ unannotated
GET = [func.HttpMethod.GET]
KEYED = func.AuthLevel.FUNCTION  # the host refuses a call without the function key (401) before we run


def query() -> QueryService:
    return bootstrap.worker().query


@bp.route(route="subscriptions", methods=GET, auth_level=KEYED)
def ops_subscriptions(req: func.HttpRequest) -> func.HttpResponse:
    return ops.subscriptions(req, query)


@bp.route(route="subscriptions/{id}", methods=GET, auth_level=KEYED)
def ops_subscription(req: func.HttpRequest) -> func.HttpResponse:
    return ops.subscription(req, query)


@bp.route(route="subscriptions/{id}/events", methods=GET, auth_level=KEYED)
def ops_subscription_events(req: func.HttpRequest) -> func.HttpResponse:
    return ops.events(req, query)


@bp.route(route="entitlements", methods=GET, auth_level=KEYED)
def ops_entitlements(req: func.HttpRequest) -> func.HttpResponse:
    return ops.entitlements(req, query)
