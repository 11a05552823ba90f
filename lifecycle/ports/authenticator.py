"""The webhook's authenticator port: does a bearer token prove the marketplace sent a delivery?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Authenticator(Protocol):
    """Checks the `Authorization` header of a webhook delivery (Entra's JWT in Azure: WebhookAuthenticator)."""

    def authenticate(self, authorization: str | None) -> Mapping[str, Any]:
        """The token's claims; Unauthenticated when it does not prove the marketplace sent it,
        a TransientError when that cannot be told now (signing keys unreachable)."""
        ...
