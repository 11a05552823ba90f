"""The Entra stand-in: MSAL works against it over TLS on loopback, and only there."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import msal
import pytest
import requests

from lifecycle.sandbox import Sandbox
from lifecycle.settings import MARKETPLACE_API_APP_ID
from tests.sandbox.conftest import SCOPE, trusting


@pytest.fixture
def entra_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def msal_app(sandbox: Sandbox, secret: str | None = None) -> tuple[msal.ConfidentialClientApplication, list[str]]:
    """The worker's MSAL setup; also returns every URL its session fetched."""
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.ca_bundle
    fetched: list[str] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: fetched.append(response.url))
    app = msal.ConfidentialClientApplication(
        sandbox.client_id,
        authority=sandbox.authority,
        client_credential=secret or sandbox.client_secret,
        http_client=session,
        instance_discovery=False,
        validate_authority=False,
    )
    return app, fetched


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection to anything but 127.0.0.1."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        assert address[0] == "127.0.0.1", f"tried to reach {address}"
        original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.mark.usefixtures("loopback_only")
def test_msal_gets_a_marketplace_token_over_tls_from_loopback_only(entra_sandbox: Sandbox) -> None:
    app, fetched = msal_app(entra_sandbox)
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert "access_token" in result, result
    claims = entra_sandbox.entra.verify_access_token(result["access_token"])
    assert claims["aud"] == MARKETPLACE_API_APP_ID
    assert (claims["appid"], claims["tid"]) == (entra_sandbox.client_id, entra_sandbox.tenant_id)
    assert {urlsplit(url).netloc for url in fetched} == {urlsplit(entra_sandbox.authority_host).netloc}


def test_msal_reuses_its_token(entra_sandbox: Sandbox) -> None:
    app, _ = msal_app(entra_sandbox)
    first = app.acquire_token_for_client(scopes=[SCOPE])
    second = app.acquire_token_for_client(scopes=[SCOPE])
    assert second["access_token"] == first["access_token"]
    assert second.get("token_source") == "cache"
    assert entra_sandbox.entra.tokens_issued == 1


def test_wrong_secret_is_invalid_client(entra_sandbox: Sandbox) -> None:
    app, _ = msal_app(entra_sandbox, secret="not-the-secret")
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert result.get("error") == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]
    assert entra_sandbox.entra.tokens_issued == 0


def test_unknown_tenant_metadata_is_400(entra_sandbox: Sandbox) -> None:
    url = f"{entra_sandbox.authority_host}/some-other-tenant/v2.0/.well-known/openid-configuration"
    response = httpx.get(url, verify=trusting(entra_sandbox), trust_env=False)
    assert response.status_code == 400


def test_metadata_points_at_the_sandbox_and_names_microsofts_issuer(entra_sandbox: Sandbox) -> None:
    metadata = httpx.get(entra_sandbox.openid_metadata_url, verify=trusting(entra_sandbox), trust_env=False).json()
    assert metadata["issuer"] == f"https://login.microsoftonline.com/{entra_sandbox.tenant_id}/v2.0"
    assert metadata["jwks_uri"].startswith(entra_sandbox.authority_host)
    assert metadata["token_endpoint"] == f"{entra_sandbox.authority}/oauth2/v2.0/token"


def test_certificate_is_trusted_for_localhost_too(entra_sandbox: Sandbox) -> None:
    url = entra_sandbox.openid_metadata_url.replace("127.0.0.1", "localhost")
    assert httpx.get(url, verify=trusting(entra_sandbox), trust_env=False).status_code == 200


def test_rotation_publishes_the_new_key_and_keeps_the_old_until_retired(entra_sandbox: Sandbox) -> None:
    entra = entra_sandbox.entra
    old_token = entra.webhook_token()
    new_kid = entra.rotate_keys()
    new_token = entra.webhook_token()
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert {jwt.get_unverified_header(t)["kid"] for t in (old_token, new_token)} <= set(entra.keys.kids)
    entra.retire_old_keys()
    assert entra.keys.kids == [new_kid]
