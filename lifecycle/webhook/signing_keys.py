"""The publisher tenant's signing keys, from its OpenID metadata, cached.

Keys are fetched on first use and kept; a token signed with a key id we do not know
makes us refetch (Entra rotates keys), but such refetches happen at most once per
`min_refresh_seconds`, so forged key ids cannot turn us into a load generator against
the metadata endpoint. An unknown key id whose refetch is held back by that limit is a
SigningKeysUnavailable, not a verdict: a genuine token signed with a new key right after
a forged one must be retried (503), never refused (a 401 on ChangePlan rejects it). Keys
older than `max_age_seconds` are fetched again on next use, so a key Entra withdrew
stops being trusted; if that refetch fails the cached keys stay in use. A failed first
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
from lifecycle.logs import get_logger

RENEW_RETRY_SECONDS = 300.0  # after a failed renewal by age, the cached keys serve this long before the next try


class SigningKeys:
    """RS256 public keys by key id, from `openid_metadata_url`'s `jwks_uri`."""

    def __init__(
        self,
        openid_metadata_url: str,
        *,
        http: httpx.Client | None = None,
        min_refresh_seconds: float = 10.0,
        max_age_seconds: float = 24 * 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata_url = openid_metadata_url
        self._http = http or httpx.Client(timeout=3.0)
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._monotonic = monotonic
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._forced_at: float | None = None  # the last refetch an unknown kid caused
        self._lock = threading.Lock()

    def key(self, kid: str) -> Any | None:
        """The public key for `kid`, refetching once if it is unknown; None if still unknown
        after a refetch; SigningKeysUnavailable if the keys cannot be fetched or a refetch
        for it is held back (see the module docstring)."""
        first = not self._keys
        if first:
            self._refresh(force=False)
        elif self._fetched_at is not None and self._monotonic() - self._fetched_at > self._max_age:
            self._renew()
        if kid in self._keys:
            return self._keys[kid]
        if first:
            return None  # fetched for this very call: refetching at once would find the same keys
        if not self._refresh(force=True) and kid not in self._keys:  # another thread's refetch may have brought it
            raise SigningKeysUnavailable(f"key id {kid[:40]!r} is unknown and the keys were refetched moments ago")
        return self._keys.get(kid)

    def _renew(self) -> None:
        try:
            self._refresh(force=False, older_than=self._max_age)
        except SigningKeysUnavailable as error:
            # Keep what we have, and let the next try wait: each try can stall a webhook for the
            # fetch's timeout, inside the marketplace's 10 seconds.
            with self._lock:
                self._fetched_at = self._monotonic() - self._max_age + RENEW_RETRY_SECONDS
            get_logger("lifecycle.webhook").warning("signing_keys.renew_failed", reason=str(error))

    def _refresh(self, *, force: bool, older_than: float | None = None) -> bool:
        """Fetch the keys unless another thread just did or a forced refetch is held back;
        whether the keys were fetched (or found fetched since the call began)."""
        with self._lock:
            now = self._monotonic()
            if older_than is not None:
                if self._fetched_at is not None and now - self._fetched_at <= older_than:
                    return True  # another thread renewed them while we waited for the lock
            elif self._fetched_at is not None and not force:
                return True  # another thread fetched while we waited for the lock
            if force and self._forced_at is not None and now - self._forced_at < self._min_refresh:
                return False  # an unknown kid already made us refetch a moment ago
            self._keys = self._fetch()
            self._fetched_at = now
            if force:
                self._forced_at = now
            return True

    def _fetch(self) -> dict[str, Any]:
        try:
            metadata = self._get_json(self._metadata_url)
            jwks = self._get_json(str(metadata["jwks_uri"]))
            found = {}
            for entry in jwks.get("keys", []):
                if isinstance(entry, dict) and entry.get("kty") == "RSA" and entry.get("kid"):
                    key = _rsa_key(entry)
                    if key is not None:
                        found[str(entry["kid"])] = key
        except (httpx.HTTPError, KeyError, ValueError, TypeError, AttributeError) as error:
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


def _rsa_key(entry: dict[str, Any]) -> Any:
    """The public key of one JWKS entry; None for one we cannot read, which must not take the
    others down with it (every webhook would be answered 503 until the JWKS changed)."""
    try:
        return jwt.PyJWK.from_dict({**entry, "alg": "RS256"}).key
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        get_logger("lifecycle.webhook").warning("signing_keys.unreadable_key", kid=str(entry.get("kid"))[:40],
                                                error_type=type(error).__name__)
        return None
