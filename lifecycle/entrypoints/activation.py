"""POST /api/marketplace/activate: the landing page's back end, shared by both runtimes.

    body   {"token": "<the landing page's ?token= value>"}, URL-encoded or not
    200    {"status": "activated" | "already_active", "subscription": {...}}
    202    {"status": "pending", ...}: activation sent, the marketplace does not show it yet
    400    no token, or the marketplace does not know it (invalid or expired)
    409    the subscription is Unsubscribed
    503    anything transient (the API, storage), or our own misconfiguration (a 403): try again
    500    a bug

The token is a credential for one purchase: it is never logged.
"""

from __future__ import annotations

import json
import traceback
from typing import TYPE_CHECKING, Any

import azure.functions as func

from lifecycle.errors import (
    MarketplaceBadRequest,
    MarketplaceNotFound,
    PermanentError,
    TransientError,
)
from lifecycle.logs import get_logger
from lifecycle.product.events import subscription_json

if TYPE_CHECKING:
    from lifecycle.services.activation import ActivationService

_STATUS = {"activated": 200, "already_active": 200, "pending": 202}


def activate(req: func.HttpRequest, service: ActivationService) -> func.HttpResponse:
    from lifecycle.services.activation import CannotActivate

    log = get_logger("lifecycle.http")
    token = _token(req)
    if not token:
        return _json(400, {"error": 'send {"token": "..."}: the token from the landing page\'s query string'})
    try:
        done = service.activate(token)
    except (MarketplaceBadRequest, MarketplaceNotFound):
        log.info("activation.bad_token")
        return _json(400, {"error": "the marketplace token is invalid or has expired"})
    except CannotActivate as error:
        return _json(409, {"error": str(error)})
    except (TransientError, PermanentError) as error:  # a 403 is our configuration, never the customer's
        log.error("activation.unavailable", error_type=type(error).__name__, reason=str(error))
        return _json(503, {"error": "temporarily unavailable, retry"})
    except Exception as error:
        frame = traceback.extract_tb(error.__traceback__)[-1]  # where, without the message
        log.error("activation.crashed", error_type=type(error).__name__,
                  where=f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}")
        return _json(500, {"error": "internal error"})
    return _json(_STATUS[done.result.value], {"status": done.result.value,
                                              "subscription": subscription_json(done.subscription)})


def _token(req: func.HttpRequest) -> str:
    try:
        body: Any = json.loads(req.get_body() or b"{}")
    except ValueError:
        body = {}
    token = body.get("token") if isinstance(body, dict) else None
    return token.strip() if isinstance(token, str) else ""


def _json(status: int, body: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")
