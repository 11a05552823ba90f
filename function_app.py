"""The Azure Functions app: registers the blueprints and nothing else.

An import error here leaves the Function App with zero functions and no error a user
would notice, so this module imports only the blueprints, and they connect to nothing.
"""

from __future__ import annotations

import azure.functions as func

from functions import activation, health, ops, processor, product, reconcile, webhook

# Any HTTP function that does not say otherwise needs a function key (the ops API does).
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(webhook.bp)
app.register_functions(processor.bp)
app.register_functions(health.bp)
app.register_functions(reconcile.bp)
app.register_functions(activation.bp)
app.register_functions(product.bp)
app.register_functions(ops.bp)
