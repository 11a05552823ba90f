"""An Entra ID stand-in for one publisher tenant and its single-tenant app registration.

It issues what the real one issues to the two parties of the marketplace contract:

* to the publisher (client credentials, client id + secret): a v1 access token for the
  Fulfillment API, `aud` = the API's app id, `appid` = the publisher's client id;
* on the marketplace's behalf, for webhooks: a token for the publisher's app,
  `aud` = the publisher's client id, `azp` (v2) or `appid` (v1) = the API's app id.

Both are RS256 JWTs signed with keys published as a JWKS (`keys.SigningKeys`). Errors
look like Entra's: `{"error", "error_description": "AADSTS...", "error_codes"}`.
HTTP is served by `lifecycle.sandbox.entra_http`.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from lifecycle.sandbox.keys import SigningKeys
from lifecycle.settings import MARKETPLACE_API_APP_ID

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"


class EntraError(Exception):
    """A refusal by the token endpoint, shaped like Entra's."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()}",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }


def v1_issuer(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


def v2_issuer(tenant_id: str) -> str:
    return f"{MICROSOFT_AUTHORITY}/{tenant_id}/v2.0"


class Entra:
    """Tokens, metadata and keys for one tenant; counts the access tokens it issues."""

    def __init__(
        self, *, tenant_id: str, client_id: str, client_secret: str, token_lifetime: int = 3600, key_size: int = 2048
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.keys = SigningKeys(key_size)
        self.base_url = ""  # https://127.0.0.1:PORT once served
        # Apps registered in the tenant (id -> secret); only `client_id` is the offer's app.
        self._clients = {client_id: client_secret}
        self._principal_id = str(uuid.uuid4())  # the app's service principal in the tenant
        self._lock = threading.Lock()
        self._issued = 0

    def register_client(self, client_id: str, client_secret: str) -> None:
        """Another app in the tenant: it gets tokens, but the API answers it 403 (wrong app)."""
        with self._lock:
            self._clients[client_id] = client_secret

    @property
    def tokens_issued(self) -> int:
        with self._lock:
            return self._issued

    def rotate_keys(self) -> str:
        """Publish and sign with a new key; the old one stays published. The new kid."""
        return self.keys.rotate()

    def retire_old_keys(self) -> None:
        self.keys.retire_old()

    def knows(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id.lower(), "common", "organizations")

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        """The tenant's v2.0 metadata; endpoints point here, the issuer is Microsoft's."""
        base = f"{self.base_url}/{tenant}"
        return {
            "issuer": v2_issuer(self.tenant_id),
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "azp", "appid", "ver"],
            "request_uri_parameter_supported": False,
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks(issuer=f"{MICROSOFT_AUTHORITY}/{{tenantid}}/v2.0")

    def issue_token(self, tenant: str, form: Mapping[str, str], basic: tuple[str, str] | None = None) -> dict[str, Any]:
        """The client-credentials grant: an access token for the Fulfillment API, or EntraError."""
        if tenant.lower() != self.tenant_id.lower():
            raise EntraError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
        with self._lock:
            expected = self._clients.get(client_id)
        if expected is None:
            raise EntraError(
                400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found."
            )
        if not secrets.compare_digest(secret.encode(), expected.encode()):
            raise EntraError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if f"{MARKETPLACE_API_APP_ID}/.default" not in form.get("scope", "").split():
            raise EntraError(400, "invalid_scope", 1002012, "The provided value for scope is not valid.")
        now = int(time.time())
        claims = {
            "aud": MARKETPLACE_API_APP_ID,
            "iss": v1_issuer(self.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "appid": client_id,
            "appidacr": "1",
            "idp": v1_issuer(self.tenant_id),
            "oid": self._principal_id,
            "sub": self._principal_id,
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        with self._lock:
            self._issued += 1
        lifetime = self.token_lifetime
        token = self.keys.sign(claims)
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The claims of a token this Entra issued for the Fulfillment API; raises jwt.InvalidTokenError."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = self.keys.public_key(str(kid))
        if key is None:
            raise jwt.InvalidTokenError(f"no published key has kid {kid!r}")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=MARKETPLACE_API_APP_ID,
            issuer=v1_issuer(self.tenant_id),
            leeway=30,
            options={"require": ["exp", "iat", "nbf", "aud", "iss"]},
        )
        if claims.get("tid") != self.tenant_id:
            raise jwt.InvalidTokenError("token is for another tenant")
        return claims

    def webhook_token(
        self,
        *,
        version: int = 2,
        audience: str | None = None,
        tenant_id: str | None = None,
        app_id: str = MARKETPLACE_API_APP_ID,
        lifetime: int = 3600,
        issued_at: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        unpublished_key: bool = False,
    ) -> str:
        """The bearer token Microsoft puts on a webhook; overrides make invalid ones for tests."""
        tid = tenant_id or self.tenant_id
        now = int(time.time()) if issued_at is None else issued_at
        claims: dict[str, Any] = {
            "aud": audience or self.client_id,
            "iss": v2_issuer(tid) if version == 2 else v1_issuer(tid),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "oid": str(uuid.uuid4()),
            "sub": str(uuid.uuid4()),
            "tid": tid,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0" if version == 2 else "1.0",
        }
        if version == 2:
            claims.update(azp=app_id, azpacr="2")
        else:
            claims.update(appid=app_id, appidacr="2", idp=v1_issuer(tid))
        claims.update(extra_claims or {})
        return SigningKeys.sign_unpublished(claims) if unpublished_key else self.keys.sign(claims)
