"""The marketplace sandbox: a faithful local stand-in for Microsoft's side.

The Fulfillment API v2 (HTTP), an Entra-like identity endpoint with OpenID metadata
and JWKS (HTTPS, self-signed), and a webhook sender that signs its deliveries like
Microsoft, all on 127.0.0.1. It is the *other party*: it imports nothing of the
worker except the marketplace API's app id.

    Sandbox             composes and serves everything (server.py)
    Marketplace         the in-memory truth and its rules (marketplace.py, state.py)
    WebhookSender       deliveries, the 10-second rule, retries (webhook.py)
    Entra               tokens, metadata, keys (entra.py)
"""

from __future__ import annotations

from lifecycle.sandbox.clock import ManualClock, ScaledClock, SystemClock
from lifecycle.sandbox.entra import Entra
from lifecycle.sandbox.errors import SandboxError
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.sandbox.records import Decider, OperationRecord
from lifecycle.sandbox.server import Sandbox
from lifecycle.sandbox.webhook import DeliveryResult, WebhookSender

__all__ = [
    "Decider",
    "DeliveryResult",
    "Entra",
    "ManualClock",
    "Marketplace",
    "OperationRecord",
    "Sandbox",
    "SandboxError",
    "ScaledClock",
    "SystemClock",
    "WebhookSender",
]
