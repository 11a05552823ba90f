"""GET /api/health: liveness, cheap and without outside calls."""

from __future__ import annotations

import azure.functions as func

from lifecycle import bootstrap
from lifecycle.entrypoints import http
from lifecycle.settings import SettingsError, unresolved_references

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves its __init__ unannotated


# ANONYMOUS: platform health probes carry no function key. Building the worker reads the
# settings and wires clients without connecting, so a misconfigured app reports 503 here
# instead of failing every webhook.
@bp.route(route="health", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return http.health(req, bootstrap.worker, key_vault_references, product_events)


def key_vault_references() -> None:
    """App Service passes a Key Vault reference it could not resolve on as its own text, which
    the worker would use as the secret: unhealthy, naming the settings (never a value)."""
    names = unresolved_references()
    if names:
        raise SettingsError(f"{', '.join(names)}: Key Vault reference(s) App Service could not resolve (the "
                            "secret is not written yet, or the app's identity may not read it yet): "
                            "see infra/README.md")


def product_events() -> None:
    """Unhealthy while product events cannot be signed: the dispatch timer fails every minute then."""
    try:
        settings = bootstrap.worker().settings
    except Exception:  # a worker that cannot be built is the `worker` check's to report
        return
    bootstrap.check_product(settings)
