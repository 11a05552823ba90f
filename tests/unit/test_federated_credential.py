"""Federated mode: MSAL signs in with the managed identity's token as client assertion, no secret.

Entra is stood in for by a requests transport adapter (the HTTP under MSAL), the managed
identity by a stub credential: nothing leaves the process.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from requests.adapters import BaseAdapter

from lifecycle.errors import MarketplaceForbidden, MarketplaceUnavailable
from lifecycle.marketplace.auth import TOKEN_EXCHANGE_SCOPE, ManagedIdentityAssertion, MsalTokenProvider
from lifecycle.settings import MarketplaceCredential, Settings, SettingsError

TENANT = str(uuid.uuid4())
APP = str(uuid.uuid4())
AUTHORITY_HOST = "https://login.microsoftonline.com"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_on: int


class StubIdentity:
    """A managed identity: counts the scopes it was asked for and hands out a fixed JWT."""

    def __init__(self, token: str = "eyJ.mi-assertion.sig") -> None:  # noqa: S107 (a placeholder)
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, 2_000_000_000)


class FakeEntra(BaseAdapter):
    """Answers MSAL's discovery and token requests; keeps each token request's form."""

    def __init__(self, *, error: str = "") -> None:
        super().__init__()
        self.error = error
        self.token_forms: list[dict[str, str]] = []

    def send(self, request: requests.PreparedRequest, *_: Any, **__: Any) -> requests.Response:
        url = request.url or ""
        if "/oauth2/v2.0/token" in url:
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
            self.token_forms.append({name: values[0] for name, values in parse_qs(body).items()})
            if self.error:
                return _response(request, 401, {"error": self.error, "error_description": "AADSTS70021: no match"})
            return _response(request, 200, {"access_token": "api-token", "token_type": "Bearer", "expires_in": 3599})
        if "openid-configuration" in url:
            base = f"{AUTHORITY_HOST}/{TENANT}"
            return _response(request, 200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
            })
        if "discovery/instance" in url:
            return _response(request, 200, {"metadata": [], "tenant_discovery_endpoint":
                                            f"{AUTHORITY_HOST}/{TENANT}/v2.0/.well-known/openid-configuration"})
        return _response(request, 404, {"error": "not_found"})

    def close(self) -> None:
        pass


def _response(request: requests.PreparedRequest, status: int, body: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = request.url or ""
    response.request = request
    return response


def federated(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"tenant_id": TENANT, "client_id": APP,
                              "marketplace_credential": MarketplaceCredential.FEDERATED}
    return Settings(**(values | overrides))


def test_msal_sends_the_managed_identity_token_as_client_assertion_and_no_secret() -> None:
    identity, entra = StubIdentity(), FakeEntra()
    provider = MsalTokenProvider(federated(), assertion=ManagedIdentityAssertion(credential=identity),
                                 transport=entra)

    assert provider.token() == "api-token"

    [form] = entra.token_forms
    assert form["client_assertion"] == identity.token
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert "client_secret" not in form
    assert form["client_id"] == APP
    assert identity.scopes == [(TOKEN_EXCHANGE_SCOPE,)]


def test_the_assertion_is_asked_for_lazily_not_at_construction() -> None:
    identity = StubIdentity()
    MsalTokenProvider(federated(), assertion=ManagedIdentityAssertion(credential=identity), transport=FakeEntra())
    assert identity.scopes == []


def test_federated_mode_needs_no_client_secret_but_secret_mode_does() -> None:
    MsalTokenProvider(federated(client_secret=""))
    with pytest.raises(SettingsError, match="MARKETPLACE_CLIENT_SECRET is not set"):
        MsalTokenProvider(Settings(tenant_id=TENANT, client_id=APP))


def test_secret_mode_still_sends_the_client_secret() -> None:
    entra = FakeEntra()
    provider = MsalTokenProvider(Settings(tenant_id=TENANT, client_id=APP, client_secret="s3cret"), transport=entra)
    provider.token()
    [form] = entra.token_forms
    assert form["client_secret"] == "s3cret"
    assert "client_assertion" not in form


def test_a_refused_assertion_names_the_federated_credential_to_check() -> None:
    entra = FakeEntra(error="invalid_client")
    provider = MsalTokenProvider(federated(), assertion=lambda: "eyJ.wrong.sig", transport=entra)
    with pytest.raises(MarketplaceForbidden, match=r"federated credential .*api://AzureADTokenExchange"):
        provider.token()


def test_an_identity_that_cannot_issue_a_token_is_transient_and_names_the_setting() -> None:
    class Unavailable:
        def get_token(self, *scopes: str) -> AccessToken:
            raise RuntimeError("ManagedIdentityCredential authentication unavailable")

    assertion = ManagedIdentityAssertion("mi-client-id", credential=Unavailable())
    provider = MsalTokenProvider(federated(), assertion=assertion, transport=FakeEntra())
    with pytest.raises(MarketplaceUnavailable, match="AZURE_CLIENT_ID"):
        provider.token()
