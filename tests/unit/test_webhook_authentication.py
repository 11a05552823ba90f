"""Forged, expired and misdirected webhook tokens are refused; Microsoft's v1 and v2 tokens pass."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from lifecycle.errors import SigningKeysUnavailable, TokenNotForUs, Unauthenticated
from lifecycle.settings import MARKETPLACE_API_APP_ID
from lifecycle.webhook.authentication import VERIFIED_FOR, VERIFIED_KEPT, WebhookAuthenticator
from lifecycle.webhook.signing_keys import RENEW_RETRY_SECONDS, SigningKeys

TENANT = "11111111-2222-3333-4444-555555555555"
METADATA = "https://login.example/meta/openid-configuration"  # never contacted: a mock transport answers
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class StaticKeys:
    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys

    def key(self, kid: str) -> Any | None:
        return self.keys.get(kid)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "aud": CLIENT,
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "tid": TENANT,
        "azp": MARKETPLACE_API_APP_ID,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = KEY, kid: str = "k1") -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def authenticator() -> WebhookAuthenticator:
    return WebhookAuthenticator(StaticKeys({"k1": KEY.public_key()}), tenant_id=TENANT, client_id=CLIENT)


def test_a_v2_token_from_the_marketplace_is_accepted(authenticator: WebhookAuthenticator) -> None:
    assert authenticator.authenticate("Bearer " + sign(claims()))["tid"] == TENANT


def test_a_v1_token_with_appid_is_accepted(authenticator: WebhookAuthenticator) -> None:
    v1 = claims(iss=f"https://sts.windows.net/{TENANT}/", azp=None, appid=MARKETPLACE_API_APP_ID)
    assert authenticator.authenticate("Bearer " + sign(v1))["appid"] == MARKETPLACE_API_APP_ID


def unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{part(payload)}."


def hs256_with_public_key() -> str:
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    import hashlib
    import hmac

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims()).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


# Built when each test runs, not at import: a suite that reaches this test minutes after
# collecting it must not find the "not yet valid" token valid by then.
FORGED: dict[str, tuple[Callable[[], str | None], str]] = {  # each with the reason it is refused for
    "no header": (lambda: None, "no Authorization header"),
    "not bearer": (lambda: "Basic dXNlcjpwYXNz", "not a bearer token"),
    "empty bearer": (lambda: "Bearer ", "not a bearer token"),
    "garbage": (lambda: "Bearer not.a.jwt", "not a JWT"),
    "alg none": (lambda: "Bearer " + unsigned(claims()), "not signed with RS256"),
    "hs256 with the public key": (lambda: "Bearer " + hs256_with_public_key(), "not signed with RS256"),
    "unknown kid": (lambda: "Bearer " + sign(claims(), kid="k-unknown"), "not one of our tenant's keys"),
    "signed by another key": (lambda: "Bearer " + sign(claims(), key=OTHER_KEY), "InvalidSignatureError"),
    "wrong azp": (lambda: "Bearer " + sign(claims(azp="not-the-marketplace")), "not issued to the marketplace"),
    "wrong aud and azp": (lambda: "Bearer " + sign(claims(aud="someone-else", azp="not-the-marketplace")),
                          "not issued to the marketplace"),
    # Every publisher receives marketplace tokens for its own app; a 503 for them would be ours to give at will.
    "another publisher's": (
        lambda: "Bearer " + sign(claims(aud="someone-else", tid="99999999-2222-3333-4444-555555555555")),
        "another publisher's app and tenant"),
    "no azp nor appid": (lambda: "Bearer " + sign(claims(azp=None)), "not issued to the marketplace"),
    "expired": (lambda: "Bearer " + sign(claims(exp=int(time.time()) - 600)), "has expired"),
    "not yet valid": (lambda: "Bearer " + sign(claims(nbf=int(time.time()) + 600)), "not valid yet"),
    "no exp": (lambda: "Bearer " + sign(claims(exp=None)), "MissingRequiredClaimError"),
}


@pytest.mark.parametrize(("forge", "reason"), FORGED.values(), ids=FORGED.keys())
def test_forged_or_misdirected_tokens_are_unauthenticated_for_their_own_reason(
    authenticator: WebhookAuthenticator, forge: Callable[[], str | None], reason: str
) -> None:
    header = forge()
    with pytest.raises(Unauthenticated, match=re.escape(reason)):
        authenticator.authenticate(header)


NOT_FOR_US: dict[str, tuple[Callable[[], str], str]] = {  # signed, issued to the marketplace, one id ours
    "another audience": (lambda: sign(claims(aud="someone-else")),
                         "for the app 'someone-else', not MARKETPLACE_CLIENT_ID"),
    "another tenant": (lambda: sign(claims(tid="99999999-2222-3333-4444-555555555555")),
                       "from the tenant '99999999-2222-3333-4444-555555555555', not MARKETPLACE_TENANT_ID"),
    "another issuer": (lambda: sign(claims(iss="https://login.microsoftonline.com/other/v2.0")),
                       "not MARKETPLACE_TENANT_ID"),
}


@pytest.mark.parametrize(("token", "reason"), NOT_FOR_US.values(), ids=NOT_FOR_US.keys())
def test_a_genuine_marketplace_token_for_another_app_or_tenant_points_at_our_settings(
    authenticator: WebhookAuthenticator, token: Callable[[], str], reason: str
) -> None:
    # A transient error (503), never Unauthenticated (401): a 401 would reject every plan change
    # while our client or tenant id is wrong, and nothing is accepted either way.
    with pytest.raises(TokenNotForUs, match=re.escape(reason)):
        authenticator.authenticate("Bearer " + token())


def test_small_clock_skew_is_tolerated(authenticator: WebhookAuthenticator) -> None:
    assert authenticator.authenticate("Bearer " + sign(claims(exp=int(time.time()) - 30)))


def jwks_transport(calls: list[str], keys: dict[str, Any], fail: bool = False) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if fail:
            return httpx.Response(503)
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"jwks_uri": "https://login.example/keys"})
        jwks = [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), "kid": kid} for kid, k in keys.items()
        ]
        return httpx.Response(200, json={"keys": jwks})

    return httpx.MockTransport(handler)


def keys_serving(published: dict[str, Any], calls: list[str], *, clock: list[float] | None = None,
                 **options: Any) -> SigningKeys:
    """SigningKeys over the JWKS stand-in publishing `published`, its requests noted in `calls`."""
    if clock is not None:
        options["monotonic"] = lambda: clock[0]
    return SigningKeys(METADATA, http=httpx.Client(transport=jwks_transport(calls, published)), **options)


def test_one_unreadable_key_in_the_jwks_leaves_the_others_usable() -> None:
    good = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())), "kid": "k1"}
    broken = {"kty": "RSA", "kid": "k0", "e": "AQAB"}  # no modulus

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"jwks_uri": "https://login.example/keys"})
        return httpx.Response(200, json={"keys": [broken, good]})

    keys = SigningKeys(METADATA, http=httpx.Client(transport=httpx.MockTransport(handler)))
    with capture_logs() as logs:
        assert keys.key("k1") is not None
    assert [line["kid"] for line in logs if line["event"] == "signing_keys.unreadable_key"] == ["k0"]


def test_signing_keys_are_fetched_once_and_reused() -> None:
    calls: list[str] = []
    keys = keys_serving({"k1": KEY}, calls)
    assert keys.key("k1") is not None
    assert keys.key("k1") is not None
    assert len(calls) == 2  # metadata + jwks, once


def test_an_unknown_kid_triggers_one_refetch_then_finds_a_rotated_key() -> None:
    calls: list[str] = []
    published = {"k1": KEY}
    keys = keys_serving(published, calls, min_refresh_seconds=0)
    assert keys.key("k1") is not None
    published["k2"] = OTHER_KEY
    assert keys.key("k2") is not None
    assert len(calls) == 4


def test_unknown_kids_do_not_refetch_more_often_than_the_minimum_interval() -> None:
    calls: list[str] = []
    clock = [100.0]
    keys = keys_serving({"k1": KEY}, calls, clock=clock, min_refresh_seconds=10)
    keys.key("k1")
    assert keys.key("forged") is None  # refetched: a verdict
    for _ in range(4):
        with pytest.raises(SigningKeysUnavailable, match="refetched moments ago"):
            keys.key("forged")
    assert len(calls) == 4  # the first unknown kid refetched once; the next four did not
    clock[0] += 11
    assert keys.key("forged") is None
    assert len(calls) == 6


def test_a_genuine_token_on_a_new_key_right_after_a_forged_kid_is_retried_not_refused() -> None:
    # A 401 on a ChangePlan rejects the customer's change: with the refetch held back, answer 503.
    calls: list[str] = []
    clock = [100.0]
    published = {"k1": KEY}
    keys = keys_serving(published, calls, clock=clock, min_refresh_seconds=10)
    authenticator = WebhookAuthenticator(keys, tenant_id=TENANT, client_id=CLIENT)
    keys.key("k1")
    assert keys.key("forged") is None
    published["k2"] = OTHER_KEY  # Entra rotates
    genuine = "Bearer " + jwt.encode(claims(), OTHER_KEY, algorithm="RS256", headers={"kid": "k2"})

    with pytest.raises(SigningKeysUnavailable):
        authenticator.authenticate(genuine)
    clock[0] += 11  # the marketplace's retry, later
    assert authenticator.authenticate(genuine)["tid"] == TENANT


def test_keys_older_than_the_maximum_age_are_fetched_again_and_a_withdrawn_key_is_refused() -> None:
    calls: list[str] = []
    clock = [100.0]
    published = {"k1": KEY}
    keys = keys_serving(published, calls, clock=clock, max_age_seconds=3600)
    assert keys.key("k1") is not None
    del published["k1"]
    published["k2"] = OTHER_KEY
    clock[0] += 3599
    assert keys.key("k1") is not None  # still within its age: no fetch
    assert len(calls) == 2
    clock[0] += 2
    assert keys.key("k1") is None  # renewed: k1 is gone (and the forced refetch confirms it)
    assert keys.key("k2") is not None


def test_a_failed_renewal_keeps_the_cached_keys_and_waits_before_trying_again() -> None:
    calls: list[str] = []
    clock = [100.0]
    failing = [False]
    inner = jwks_transport(calls, {"k1": KEY})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503) if failing[0] else inner.handle_request(request)

    keys = SigningKeys(METADATA, http=httpx.Client(transport=httpx.MockTransport(handler)),
                       max_age_seconds=3600, monotonic=lambda: clock[0])
    assert keys.key("k1") is not None
    failing[0] = True
    clock[0] += 3601
    assert keys.key("k1") is not None  # the renewal failed: the cached key still serves
    tried = len(calls)
    clock[0] += RENEW_RETRY_SECONDS - 1
    assert keys.key("k1") is not None
    assert len(calls) == tried  # no second try inside the wait


def test_a_key_fetch_failure_is_transient_not_an_authentication_failure() -> None:
    keys = SigningKeys(METADATA, http=httpx.Client(transport=jwks_transport([], {}, fail=True)))
    authenticator = WebhookAuthenticator(keys, tenant_id=TENANT, client_id=CLIENT)
    with pytest.raises(SigningKeysUnavailable):
        authenticator.authenticate("Bearer " + sign(claims()))


def test_an_unknown_kid_on_the_very_first_call_costs_one_fetch_not_two() -> None:
    calls: list[str] = []
    keys = keys_serving({"k1": KEY}, calls)
    assert keys.key("forged") is None
    assert len(calls) == 2  # metadata + jwks, once


class CountingKeys:
    """Our tenant's keys, counting how often a signature needed one."""

    def __init__(self) -> None:
        self.lookups = 0

    def key(self, kid: str) -> Any | None:
        self.lookups += 1
        return KEY.public_key() if kid == "k1" else None


def remembering(clock: list[float]) -> tuple[WebhookAuthenticator, CountingKeys]:
    keys = CountingKeys()
    return WebhookAuthenticator(keys, tenant_id=TENANT, client_id=CLIENT, clock=lambda: clock[0]), keys


def test_a_token_that_passed_is_not_checked_again_for_the_next_deliveries() -> None:
    clock = [time.time()]
    authenticator, keys = remembering(clock)
    header = "Bearer " + sign(claims())
    for _ in range(5):
        assert authenticator.authenticate(header)["tid"] == TENANT
    assert keys.lookups == 1


@pytest.mark.parametrize(("lifetime", "later"), [(3600, VERIFIED_FOR + 1), (60, 61)],
                         ids=["after the time kept", "after its exp, before the time kept"])
def test_a_remembered_token_is_checked_in_full_again_after_its_time(lifetime: int, later: float) -> None:
    # After exp the full check decides (PyJWT's own skew applies there).
    clock = [time.time()]
    authenticator, keys = remembering(clock)
    header = "Bearer " + sign(claims(exp=int(clock[0]) + lifetime))
    authenticator.authenticate(header)
    clock[0] += later
    authenticator.authenticate(header)
    assert keys.lookups == 2


def test_the_same_token_with_a_forged_signature_is_not_taken_from_memory() -> None:
    clock = [time.time()]
    authenticator, _ = remembering(clock)
    token = sign(claims())
    authenticator.authenticate("Bearer " + token)
    head, body, signature = token.split(".")
    forged = ".".join([head, body, ("A" if signature[0] != "A" else "B") + signature[1:]])
    with pytest.raises(Unauthenticated, match="InvalidSignatureError"):
        authenticator.authenticate("Bearer " + forged)


def test_only_so_many_tokens_are_remembered() -> None:
    clock = [time.time()]
    authenticator, keys = remembering(clock)
    tokens = ["Bearer " + sign(claims(jti=str(n))) for n in range(VERIFIED_KEPT + 1)]
    for header in tokens:
        authenticator.authenticate(header)
    authenticator.authenticate(tokens[-1])  # the newest is remembered
    assert keys.lookups == VERIFIED_KEPT + 1
    authenticator.authenticate(tokens[0])  # the oldest was forgotten: checked in full
    assert keys.lookups == VERIFIED_KEPT + 2
