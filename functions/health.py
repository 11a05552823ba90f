"""GET /api/health: liveness, cheap and without outside calls."""

from __future__ import annotations

import azure.functions as func

from lifecycle import bootstrap
from lifecycle.entrypoints import http

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves its __init__ unannotated


# ANONYMOUS: platform health probes carry no function key. Building the worker reads the
# settings and wires clients without connecting, so a misconfigured app reports 503 here
# instead of failing every webhook.
@bp.route(route="health", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return http.health(req, bootstrap.worker)
