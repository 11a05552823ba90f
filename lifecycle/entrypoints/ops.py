"""The read-only ops API on `func.HttpRequest`, shared by Azure Functions and the local server.

    GET /api/subscriptions?status=&offer=&plan=&tenant=&purchaser=&freeTrial=&test=
                          &renewalsWithinDays=&limit=&continuation=
    GET /api/subscriptions/{id}            one subscription and its version
    GET /api/subscriptions/{id}/events     its history, newest first
    GET /api/entitlements?tenantId=        what a customer tenant may use now

Answers: 200 JSON; 400 a bad filter, id or token (the message says which); 404 unknown
subscription; 503 storage down (retry); 500 a bug. The key: in Azure the Functions host
checks the function key before we run (AuthLevel.FUNCTION); the local server wraps each
handler in `keyed`, which does the same check (`x-functions-key` header or `code`
parameter, compared in constant time): no key or a wrong one is 401, saying which, and
where the local key is kept.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

import azure.functions as func

from lifecycle.domain.history import HistoryEntry
from lifecycle.errors import InvalidQuery, PermanentError, TransientError, UnknownSubscription
from lifecycle.logs import get_logger
from lifecycle.plain import plain
from lifecycle.services.query import Entitlement, QueryService, SubscriptionPage
from lifecycle.services.query_filter import parse_query

Service = Callable[[], QueryService]
Handler = Callable[[func.HttpRequest], func.HttpResponse]


def subscriptions(req: func.HttpRequest, service: Service) -> func.HttpResponse:
    return _answer(lambda: page_json(service().subscriptions(parse_query(dict(req.params)))))


def subscription(req: func.HttpRequest, service: Service) -> func.HttpResponse:
    def read() -> dict[str, Any]:
        found, version = service().subscription(_route_id(req))
        return {"subscription": plain(found), "version": version}

    return _answer(read)


def events(req: func.HttpRequest, service: Service) -> func.HttpResponse:
    subscription_id = _route_id(req)
    return _answer(lambda: history_json(subscription_id, service().history(subscription_id)))


def entitlements(req: func.HttpRequest, service: Service) -> func.HttpResponse:
    tenant = req.params.get("tenantId", "")
    return _answer(lambda: entitlements_json(tenant, service().entitlements(tenant)))


def keyed(key: str, handler: Handler, *, kept: str = "") -> Handler:
    """`handler` behind the function key, as the Functions host puts it; an empty key admits nobody.

    Used by the local server only (in Azure the host checks the keys): its 401 says whether
    the key was missing or did not match, and where the local key is kept (`kept`, e.g. its
    file), never what was given or expected.
    """
    expected = key.encode()
    where = f" ({kept})" if kept else ""

    def guarded(req: func.HttpRequest) -> func.HttpResponse:
        given = (req.headers.get("x-functions-key") or req.params.get("code") or "").encode()
        if not given:
            return _json(401, {"error": f"no function key given: send it in the x-functions-key header or as "
                                        f"?code={where}"})
        if not expected or not hmac.compare_digest(given, expected):
            return _json(401, {"error": f"the function key given does not match{where}"})
        return handler(req)

    return guarded


def page_json(page: SubscriptionPage) -> dict[str, Any]:
    return {"subscriptions": [plain(s) for s in page.subscriptions], "continuation": page.continuation}


def history_json(subscription_id: str, history: list[HistoryEntry]) -> dict[str, Any]:
    return {"subscriptionId": subscription_id, "events": [plain(entry) for entry in history]}


def entitlements_json(tenant_id: str, found: list[Entitlement]) -> dict[str, Any]:
    return {"tenantId": tenant_id.strip().lower(), "entitlements": [plain(e) for e in found]}


def _route_id(req: func.HttpRequest) -> str:
    return str(req.route_params.get("id", ""))


def _answer(read: Callable[[], dict[str, Any]]) -> func.HttpResponse:
    log = get_logger("lifecycle.ops")
    try:
        return _json(200, read())
    except InvalidQuery as error:
        return _json(400, {"error": str(error)})
    except UnknownSubscription as error:
        return _json(404, {"error": str(error)})
    except TransientError as error:
        log.warning("ops.unavailable", error_type=type(error).__name__)
        return _json(503, {"error": "storage is unavailable, retry"})
    except PermanentError as error:
        return _json(400, {"error": str(error)})
    except Exception as error:  # a bug: logged by type only, the caller learns nothing internal
        log.error("ops.crashed", error_type=type(error).__name__)
        return _json(500, {"error": "internal error"})


def _json(status: int, body: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


