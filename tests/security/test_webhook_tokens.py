"""The webhook in `jwt` mode against the sandbox's Entra: real keys over TLS, real signatures.

Every forged class is refused with 401 before anything is recorded: no token, garbage,
`alg: none`, HS256 signed with our published public key, an unknown kid, a kid of ours
over another key's signature, wrong azp/appid, expired, not yet valid, and a genuine token
of another tenant's app. A token Entra signed and issued to the marketplace for another
audience or tenant is refused with 503 (our own client or tenant id is the likely fault).
A key rotation mid-run is followed (one refetch on the new kid); the signing keys being
unreachable is a 503, never a 4xx (on ChangePlan/ChangeQuantity a 4xx would reject the change).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from lifecycle.bootstrap import Worker, build
from lifecycle.sandbox import Entra, Sandbox
from lifecycle.settings import Settings
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.queue import FakeQueue
from tests.fakes.store import FakeSubscriptionStore


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(auto_accept_seconds=None) as running:
        yield running


def worker_for(sandbox: Sandbox, **env: str) -> tuple[Worker, FakeQueue, FakeSubscriptionStore]:
    settings = Settings.from_env(sandbox.settings_env() | {"WEBHOOK_ENQUEUE_DELAY_SECONDS": "0"} | env)
    api = InProcessMarketplaceApi(sandbox.marketplace)
    queue, store = FakeQueue(), FakeSubscriptionStore()
    return build(settings, store=store, queue=queue, api=api, webhook_api=api), queue, store


@pytest.fixture
def stack(sandbox: Sandbox) -> tuple[Worker, FakeQueue, FakeSubscriptionStore]:
    return worker_for(sandbox)


def suspend_body(sandbox: Sandbox) -> bytes:
    subscription, _ = sandbox.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = sandbox.marketplace.suspend(subscription["id"], deliver=False)
    return json.dumps(sandbox.marketplace.webhook_payload(str(operation["id"]))).encode()


def test_a_v2_and_a_v1_token_from_the_marketplace_are_accepted(
    sandbox: Sandbox, stack: tuple[Worker, FakeQueue, FakeSubscriptionStore]
) -> None:
    worker, queue, _ = stack
    for version in (2, 1):
        token = sandbox.entra.webhook_token(version=version)
        assert worker.webhook.receive(f"Bearer {token}", suspend_body(sandbox)).status == 200
    assert len(queue.sent) == 2


# Made when each test runs: times taken at import would drift as a long suite goes on.
FORGED: dict[str, Callable[[], dict[str, Any]]] = {
    "issued to another app than the marketplace": lambda: {"app_id": str(uuid.uuid4())},
    "another audience, issued to another app": lambda: {"audience": str(uuid.uuid4()), "app_id": str(uuid.uuid4())},
    "another publisher's genuine marketplace token": lambda: {"audience": str(uuid.uuid4()),
                                                             "tenant_id": str(uuid.uuid4())},
    "expired": lambda: {"issued_at": int(time.time()) - 7200, "lifetime": 600},
    "not yet valid": lambda: {"issued_at": int(time.time()) + 3600},
    "signed by a key our tenant never published": lambda: {"unpublished_key": True},
}


NOT_FOR_US: dict[str, Callable[[], dict[str, Any]]] = {
    "another audience (our client id mistyped?)": lambda: {"audience": str(uuid.uuid4())},
    "another tenant (our tenant id mistyped?)": lambda: {"tenant_id": str(uuid.uuid4())},
}
# Signed by Entra, issued to the marketplace, with one of our two ids: the other setting is the
# likely fault, and a 401 would reject every plan and seat change meanwhile, so 503.
REFUSED = [(forge, 401) for forge in FORGED.values()] + [(misdirect, 503) for misdirect in NOT_FOR_US.values()]


@pytest.mark.parametrize(("forge", "status"), REFUSED, ids=[*FORGED.keys(), *NOT_FOR_US.keys()])
def test_forged_or_misdirected_tokens_are_refused_and_nothing_is_recorded(
    sandbox: Sandbox, stack: tuple[Worker, FakeQueue, FakeSubscriptionStore], forge: Callable[[], dict[str, Any]],
    status: int,
) -> None:
    worker, queue, store = stack
    body = suspend_body(sandbox)
    answer = worker.webhook.receive(f"Bearer {sandbox.entra.webhook_token(**forge())}", body)
    assert answer.status == status
    assert queue.sent == []
    payload = json.loads(body)
    assert store.delivery(payload["subscriptionId"], payload["id"]) is None


def test_a_key_rotated_mid_run_is_picked_up(
    sandbox: Sandbox, stack: tuple[Worker, FakeQueue, FakeSubscriptionStore]
) -> None:
    worker, _, _ = stack
    assert worker.webhook.receive(f"Bearer {sandbox.entra.webhook_token()}", suspend_body(sandbox)).status == 200
    sandbox.entra.rotate_keys()
    try:
        rotated = sandbox.entra.webhook_token()
        assert worker.webhook.receive(f"Bearer {rotated}", suspend_body(sandbox)).status == 200
    finally:
        sandbox.entra.retire_old_keys()


def test_unreachable_signing_keys_answer_503_never_4xx(sandbox: Sandbox) -> None:
    worker, queue, _ = worker_for(sandbox, WEBHOOK_OPENID_METADATA_URL="https://127.0.0.1:9/nothing-listens-here")
    answer = worker.webhook.receive(f"Bearer {sandbox.entra.webhook_token()}", suspend_body(sandbox))
    assert answer.status == 503
    assert queue.sent == []


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def alg_none(sandbox: Sandbox) -> str:
    claims = _claims_of(sandbox.entra.webhook_token())
    header = {"alg": "none", "typ": "JWT", "kid": sandbox.entra.keys.current_kid}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def hs256_with_our_public_key(sandbox: Sandbox) -> str:
    """The classic confusion: HMAC keyed with the RSA public key a verifier already trusts."""
    kid = sandbox.entra.keys.current_kid
    public = sandbox.entra.keys.public_key(kid)
    assert public is not None
    secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    claims = _claims_of(sandbox.entra.webhook_token())
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def our_kid_over_another_signature(sandbox: Sandbox) -> str:
    forged = sandbox.entra.webhook_token(unpublished_key=True)
    header, payload, signature = forged.split(".")
    ours = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    ours["kid"] = sandbox.entra.keys.current_kid
    return f"{_b64(json.dumps(ours).encode())}.{payload}.{signature}"


def another_tenants_app(_: Sandbox) -> str:
    """A genuine marketplace token, from another tenant's Entra, for another publisher's app."""
    other = Entra(tenant_id=str(uuid.uuid4()), client_id=str(uuid.uuid4()), client_secret="x", key_size=2048)
    return other.webhook_token()


MALFORMED = {
    "no Authorization header": None,
    "an empty bearer": "Bearer ",
    "another scheme": "Basic dXNlcjpwYXNz",
    "garbage": "Bearer not-a-jwt-at-all",
    "three dots of garbage": "Bearer a.b.c",
}


@pytest.mark.parametrize("authorization", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_missing_or_malformed_authorization_is_refused(
    sandbox: Sandbox, stack: tuple[Worker, FakeQueue, FakeSubscriptionStore], authorization: str | None
) -> None:
    worker, queue, _ = stack
    assert worker.webhook.receive(authorization, suspend_body(sandbox)).status == 401
    assert queue.sent == []


CRAFTED = {
    "alg none": alg_none,
    "HS256 signed with our public key": hs256_with_our_public_key,
    "our kid over another key's signature": our_kid_over_another_signature,
    "a genuine token of another tenant's app": another_tenants_app,
}


@pytest.mark.parametrize("forge", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_tokens_are_refused_and_nothing_is_recorded(
    sandbox: Sandbox, stack: tuple[Worker, FakeQueue, FakeSubscriptionStore], forge: Callable[[Sandbox], str]
) -> None:
    worker, queue, store = stack
    body = suspend_body(sandbox)
    assert worker.webhook.receive(f"Bearer {forge(sandbox)}", body).status == 401
    assert queue.sent == []
    payload = json.loads(body)
    assert store.delivery(payload["subscriptionId"], payload["id"]) is None


def test_after_a_rotation_and_retirement_a_token_signed_with_the_retired_key_is_refused(
    sandbox: Sandbox, stack: tuple[Worker, FakeQueue, FakeSubscriptionStore]
) -> None:
    worker, _, _ = stack
    old = sandbox.entra.webhook_token()
    assert worker.webhook.receive(f"Bearer {old}", suspend_body(sandbox)).status == 200
    sandbox.entra.rotate_keys()
    sandbox.entra.retire_old_keys()
    new = sandbox.entra.webhook_token()
    assert worker.webhook.receive(f"Bearer {new}", suspend_body(sandbox)).status == 200
    # The old kid is unknown now: one refetch finds it gone, and the token is refused.
    fresh, _, _ = worker_for(sandbox)
    assert fresh.webhook.receive(f"Bearer {old}", suspend_body(sandbox)).status == 401
