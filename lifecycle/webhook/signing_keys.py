"""The publisher tenant's signing keys, from its OpenID metadata, cached.

Keys are fetched once and kept; a token signed with a key id we do not know makes us
refetch (Entra rotates keys), but such refetches happen at most once per
`min_refresh_seconds`, so forged key ids cannot turn us into a load generator against
the metadata endpoint. A failed
fetch is a SigningKeysUnavailable (answered 503: the marketplace retries), never a 4xx.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from lifecycle.errors import SigningKeysUnavailable


class SigningKeys:
    """RS256 public keys by key id, from `openid_metadata_url`'s `jwks_uri`."""

    def __init__(
        self,
        openid_metadata_url: str,
        *,
        http: httpx.Client | None = None,
        min_refresh_seconds: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata_url = openid_metadata_url
        self._http = http or httpx.Client(timeout=3.0)
        self._min_refresh = min_refresh_seconds
        self._monotonic = monotonic
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._forced_at: float | None = None  # the last refetch an unknown kid caused
        self._lock = threading.Lock()

    def key(self, kid: str) -> Any | None:
        """The public key for `kid`, refetching once if it is unknown; None if still unknown."""
        if not self._keys or kid not in self._keys:
            self._refresh(force=bool(self._keys))
        return self._keys.get(kid)

    def _refresh(self, *, force: bool) -> None:
        with self._lock:
            now = self._monotonic()
            if self._fetched_at is not None and not force:
                return  # another thread fetched while we waited for the lock
            if force and self._forced_at is not None and now - self._forced_at < self._min_refresh:
                return  # an unknown kid already made us refetch a moment ago
            self._keys = self._fetch()
            self._fetched_at = now
            if force:
                self._forced_at = now

    def _fetch(self) -> dict[str, Any]:
        try:
            metadata = self._get_json(self._metadata_url)
            jwks = self._get_json(str(metadata["jwks_uri"]))
            found = {}
            for entry in jwks.get("keys", []):
                if entry.get("kty") == "RSA" and entry.get("kid"):
                    found[str(entry["kid"])] = jwt.PyJWK.from_dict({**entry, "alg": "RS256"}).key
        except (httpx.HTTPError, KeyError, ValueError, TypeError, jwt.PyJWKError) as error:
            raise SigningKeysUnavailable(f"could not fetch signing keys: {type(error).__name__}") from error
        if not found:
            raise SigningKeysUnavailable("the JWKS holds no RSA signing keys")
        return found

    def _get_json(self, url: str) -> dict[str, Any]:
        response = self._http.get(url)
        response.raise_for_status()
        value = response.json()
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value
