"""Bearer tokens for the Fulfillment API: Entra ID client credentials through MSAL.

One `ConfidentialClientApplication` per provider, built on first use (nothing
connects at import or construction), and the composition root keeps one provider per
process: MSAL caches app tokens in memory, so a token is fetched about once an hour.

MSAL gets its own requests Session. When `authority_ca_bundle` is set (the sandbox's
loopback authority) the session trusts exactly that file, with `trust_env=False`:
otherwise a REQUESTS_CA_BUNDLE in the environment silently overrides `verify`, and the
sandbox's authority skips Microsoft's instance discovery. Unset (production), the
session behaves like any requests client, so an egress proxy or corporate CA set in the
environment applies to MSAL as it does to httpx.

The app proves who it is with a client secret, or (MARKETPLACE_CREDENTIAL=federated) with
a client assertion: a token for `api://AzureADTokenExchange` issued to the Function App's
managed identity, which the app registration trusts through a federated identity
credential. MSAL calls the assertion only when it needs a new app token, and
azure-identity caches the identity's token until shortly before it expires.

Failures come out typed: refused credentials are a permanent MarketplaceForbidden
(retrying cannot fix a wrong secret), network trouble a transient MarketplaceUnavailable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import msal
import requests

from lifecycle.errors import MarketplaceForbidden, MarketplaceUnavailable
from lifecycle.settings import MarketplaceCredential, Settings, SettingsError

# OAuth error codes that mean "your configuration is wrong", not "try later".
_PERMANENT_ERRORS = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_request", "invalid_scope", "invalid_grant",
     "invalid_resource", "unsupported_grant_type"}
)
_UNAUTHORIZED = 401  # what Entra answers for refused client credentials; kept as the error's status
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"  # noqa: S105 (an audience, not a secret)
"""The audience Entra expects of a federated credential's assertion (public cloud)."""

Assertion = Callable[[], str]
"""Returns a current client assertion (a JWT) each time it is called."""


class AccessTokenSource(Protocol):
    """azure-identity's TokenCredential, as far as the assertion needs it."""

    def get_token(self, *scopes: str) -> Any: ...


class ManagedIdentityAssertion:
    """The managed identity's token for `api://AzureADTokenExchange`, as MSAL's client assertion.

    The credential is built on first call, so nothing connects at construction; it caches
    the token and refreshes it before expiry, so calling this per MSAL request is cheap.
    """

    def __init__(self, client_id: str = "", *, credential: AccessTokenSource | None = None) -> None:
        self._client_id = client_id
        self._credential = credential
        self._lock = threading.Lock()

    def __call__(self) -> str:
        try:
            return str(self._source().get_token(TOKEN_EXCHANGE_SCOPE).token)
        except Exception as error:  # azure-identity's errors: no identity here, or its endpoint failing
            raise MarketplaceUnavailable(
                f"the managed identity{' ' + self._client_id if self._client_id else ''} could not issue the "
                f"federated credential's assertion ({type(error).__name__}): check AZURE_CLIENT_ID and that "
                "the app runs as that identity"
            ) from None

    def _source(self) -> AccessTokenSource:
        with self._lock:
            if self._credential is None:
                from azure.identity import ManagedIdentityCredential  # loaded only in federated mode

                self._credential = ManagedIdentityCredential(client_id=self._client_id or None)
            return self._credential


class TokenProvider(Protocol):
    """Something that hands out a current bearer token for the Fulfillment API."""

    def token(self) -> str: ...


class StaticTokenProvider:
    """A fixed token, counting how often it was asked for (unit tests)."""

    def __init__(self, token: str = "test-token") -> None:  # noqa: S107 (a placeholder, not a secret)
        self._token = token
        self.calls = 0

    def token(self) -> str:
        self.calls += 1
        return self._token


class DeferredTokenProvider:
    """An MsalTokenProvider made at the first token, not at wiring: a command that never calls
    the Fulfillment API (an ops query, a dead-letter listing) needs no client secret, and one
    that does gets the missing setting's SettingsError from that first call."""

    def __init__(self, make: Callable[[], TokenProvider]) -> None:
        self._make = make
        self._made: TokenProvider | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._make()
        return self._made.token()


class _TimeoutSession(requests.Session):
    """requests has no session-wide timeout and MSAL passes none: a silent authority would hang us."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


_REFRESH_EARLY_SECONDS = 300.0


class MsalTokenProvider:
    """Client-credentials tokens for `settings.marketplace_scope`, cached by MSAL."""

    def __init__(self, settings: Settings, *, assertion: Assertion | None = None,
                 transport: requests.adapters.BaseAdapter | None = None) -> None:
        """`assertion` replaces the managed identity in federated mode, `transport` MSAL's HTTP (tests)."""
        self._federated = settings.marketplace_credential is MarketplaceCredential.FEDERATED
        required = [("MARKETPLACE_TENANT_ID", settings.tenant_id), ("MARKETPLACE_CLIENT_ID", settings.client_id)]
        if not self._federated:
            required.append(("MARKETPLACE_CLIENT_SECRET", settings.client_secret))
        for name, value in required:
            if not value:
                raise SettingsError(f"{name} is not set: the Fulfillment API needs the offer's Entra app")
        self._settings = settings
        self._assertion = assertion or ManagedIdentityAssertion(settings.managed_identity_client_id)
        self._transport = transport
        self._app: Any = None
        self._lock = threading.Lock()
        self._cached: tuple[str, float] = ("", 0.0)

    def token(self) -> str:
        cached, valid_until = self._cached
        if cached and time.monotonic() < valid_until:
            return cached  # MSAL's own cache lookup costs more than the rest of a call's CPU
        try:
            result = self._application().acquire_token_for_client(scopes=[self._settings.marketplace_scope])
        except (requests.RequestException, OSError) as error:
            raise MarketplaceUnavailable(f"the Entra authority could not be reached: {type(error).__name__}") from None
        except ValueError:  # MSAL could not read the token response (a proxy's error page, say)
            raise MarketplaceUnavailable("the Entra authority's answer is not a token response") from None
        access_token = result.get("access_token") if isinstance(result, dict) else None
        if isinstance(access_token, str) and access_token:
            lifetime = float(result.get("expires_in") or 0)
            # Refresh five minutes early (MSAL would too), so a token never expires in flight.
            self._cached = (access_token, time.monotonic() + max(lifetime - _REFRESH_EARLY_SECONDS, 0))
            return access_token
        raise self._failure(result if isinstance(result, dict) else {})

    def _application(self) -> Any:
        with self._lock:  # one app per provider, even when threads ask together
            if self._app is None:
                self._app = self._build()
            return self._app

    def _build(self) -> Any:
        settings = self._settings
        session = _TimeoutSession(settings.api_timeout_seconds)
        if self._transport is not None:
            session.mount("https://", self._transport)
        options: dict[str, Any] = {}
        if settings.authority_ca_bundle:
            session.trust_env = False
            session.verify = settings.authority_ca_bundle
            # A private authority is unknown to Microsoft's instance discovery; skip it.
            options = {"instance_discovery": False, "validate_authority": False}
        try:
            return msal.ConfidentialClientApplication(
                settings.client_id,
                client_credential=self._credential(),
                authority=settings.authority,
                http_client=session,
                **options,
            )
        except (requests.RequestException, OSError) as error:
            raise MarketplaceUnavailable(f"the Entra authority could not be reached: {type(error).__name__}") from None
        except ValueError as error:  # OpenID discovery answered 4xx: an unknown tenant, usually
            raise MarketplaceForbidden(
                f"the authority {settings.authority} has no OpenID configuration for tenant {settings.tenant_id!r}"
                f" ({str(error)[:160]}): check MARKETPLACE_TENANT_ID and MARKETPLACE_AUTHORITY_HOST",
                status=_UNAUTHORIZED,
            ) from None

    def _credential(self) -> str | dict[str, Any]:
        if self._federated:
            return {"client_assertion": self._assertion}  # a callable: MSAL asks it for each new token
        return self._settings.client_secret

    def _failure(self, result: dict[str, Any]) -> Exception:
        code = str(result.get("error") or "unknown_error")
        # The description's first line carries the AADSTS code; later lines are trace ids.
        description = str(result.get("error_description") or "").strip().splitlines()[:1]
        detail = f"{code}: {description[0][:200]}" if description else code
        if code in _PERMANENT_ERRORS:
            proof = ("the app registration's federated credential (issuer .../{tenant}/v2.0, subject = the "
                     "managed identity's principal id, audience api://AzureADTokenExchange)" if self._federated
                     else "MARKETPLACE_CLIENT_SECRET")
            return MarketplaceForbidden(
                f"Entra refused the client credentials ({detail}). Check MARKETPLACE_CLIENT_ID, "
                f"{proof} and MARKETPLACE_TENANT_ID against the app registration named in "
                f"the offer's Technical configuration in Partner Center (client id {self._settings.client_id}, "
                f"tenant {self._settings.tenant_id})",
                status=_UNAUTHORIZED,
            )
        return MarketplaceUnavailable(f"Entra did not issue a token ({detail})")
