"""RS256 signing keys as Entra publishes them: a JWKS, rotated by adding before retiring.

Rotation follows Entra's practice: a new key is published and signs from then on,
while the old one stays in the JWKS until retired, so tokens signed before the
rotation still verify and a verifier that caches keys meets an unknown `kid` first.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _new_kid() -> str:
    # Entra's kids look like base64 thumbprints; their content means nothing to a verifier.
    return base64.urlsafe_b64encode(secrets.token_bytes(20)).rstrip(b"=").decode()


class SigningKeys:
    """The published keys, newest last; the newest one signs. Thread-safe."""

    def __init__(self, key_size: int = 2048) -> None:
        self._key_size = key_size
        self._lock = threading.Lock()
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = [self._generate()]

    def _generate(self) -> tuple[str, rsa.RSAPrivateKey]:
        return _new_kid(), rsa.generate_private_key(public_exponent=65537, key_size=self._key_size)

    @property
    def current_kid(self) -> str:
        with self._lock:
            return self._keys[-1][0]

    @property
    def kids(self) -> list[str]:
        with self._lock:
            return [kid for kid, _ in self._keys]

    def rotate(self) -> str:
        """Publish a new key that signs from now on; the old ones stay published. Its kid."""
        new = self._generate()
        with self._lock:
            self._keys.append(new)
        return new[0]

    def retire_old(self) -> None:
        """Unpublish every key but the newest."""
        with self._lock:
            self._keys = self._keys[-1:]

    def jwks(self, issuer: str = "") -> dict[str, Any]:
        with self._lock:
            keys = list(self._keys)
        published = []
        for kid, key in keys:
            numbers = key.public_key().public_numbers()
            jwk = {"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid, "n": _b64url_uint(numbers.n)}
            jwk["e"] = _b64url_uint(numbers.e)
            if issuer:
                jwk["issuer"] = issuer
            published.append(jwk)
        return {"keys": published}

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        with self._lock:
            return next((key.public_key() for k, key in self._keys if k == kid), None)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """An RS256 JWT signed with the newest key, `kid` (and `x5t`) in its header."""
        with self._lock:
            kid, key = self._keys[-1]
        return jwt.encode(dict(claims), key, algorithm="RS256", headers={"kid": kid, "x5t": kid, "typ": "JWT"})

    @staticmethod
    def sign_unpublished(claims: Mapping[str, Any]) -> str:
        """A token no published key verifies (an impostor's), for negative tests."""
        kid, key = _new_kid(), rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(dict(claims), key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})
