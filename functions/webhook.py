"""POST /api/marketplace/webhook: the marketplace's Connection Webhook."""

from __future__ import annotations

import azure.functions as func

from lifecycle import bootstrap
from lifecycle.entrypoints import http

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves its __init__ unannotated


# ANONYMOUS on purpose: the marketplace cannot send a function key. Authenticity comes from
# Microsoft's Entra JWT (WEBHOOK_AUTH=jwt), or in `api` mode from the processor confirming
# every event with the Fulfillment API before acting on it.
@bp.route(route="marketplace/webhook", methods=[func.HttpMethod.POST], auth_level=func.AuthLevel.ANONYMOUS)
def marketplace_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return http.webhook(req, bootstrap.worker().webhook)
