"""POST /api/marketplace/activate: the landing page's back end (resolve, provision, activate, confirm)."""

from __future__ import annotations

import azure.functions as func

from lifecycle import bootstrap
from lifecycle.entrypoints import activation

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves its __init__ unannotated


# FUNCTION level: the publisher's landing page calls this from its own back end with the
# function key; a browser must never hold it.
@bp.route(route="marketplace/activate", methods=[func.HttpMethod.POST], auth_level=func.AuthLevel.FUNCTION)
def marketplace_activate(req: func.HttpRequest) -> func.HttpResponse:
    return activation.activate(req, bootstrap.worker().activation)
