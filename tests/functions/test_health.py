"""GET /api/health: liveness from local facts only; failures named, their messages kept private."""

from __future__ import annotations

from dataclasses import replace

import azure.functions as func
import pytest
from structlog.testing import capture_logs

from functions import health
from lifecycle import __version__, bootstrap
from lifecycle.entrypoints import http
from lifecycle.settings import SettingsError
from tests.functions import answer, stack, user_function

health_check = user_function(health.bp, "health")


def request() -> func.HttpRequest:
    return func.HttpRequest("GET", "http://127.0.0.1:7071/api/health", body=b"")


def test_health_answers_ok_with_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    built = stack()
    monkeypatch.setattr(bootstrap, "worker", lambda: built.worker)

    assert answer(health_check(request())) == (200, {"status": "ok", "version": __version__})


def test_health_is_503_when_the_worker_cannot_be_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def worker() -> None:
        raise SettingsError("set STORAGE_CONNECTION_STRING")

    monkeypatch.setattr(bootstrap, "worker", worker)

    with capture_logs() as logs:
        status, body = answer(health_check(request()))

    assert status == 503
    assert body["failed"] == ["worker: SettingsError"]
    assert "STORAGE_CONNECTION_STRING" not in str(body)
    assert any("STORAGE_CONNECTION_STRING" in str(entry.get("reason")) for entry in logs)


def test_health_is_503_when_a_key_vault_reference_did_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    # App Service passes an unresolved reference on as its own text: the app must not look healthy.
    built = stack()
    monkeypatch.setattr(bootstrap, "worker", lambda: built.worker)
    reference = "@Microsoft.KeyVault(VaultName=kv-x;SecretName=product-signing-secret)"
    monkeypatch.setenv("PRODUCT_SIGNING_SECRET", reference)

    with capture_logs() as logs:
        status, body = answer(health_check(request()))

    assert (status, body["failed"]) == (503, ["key_vault_references: SettingsError"])
    assert any("PRODUCT_SIGNING_SECRET: Key Vault reference" in str(entry.get("reason")) for entry in logs)
    assert "SecretName" not in str(logs)


def test_health_is_503_when_product_events_cannot_be_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    built = stack()
    configured = replace(built.worker, settings=replace(built.worker.settings,
                                                         product_events_url="https://product.example/events"))
    monkeypatch.setattr(bootstrap, "worker", lambda: configured)

    with capture_logs() as logs:
        status, body = answer(health_check(request()))

    assert (status, body["failed"]) == (503, ["product_events: SettingsError"])
    assert any("PRODUCT_SIGNING_SECRET" in str(entry.get("reason")) for entry in logs)


def test_a_failing_checks_foreign_message_is_not_logged() -> None:
    def storage() -> None:
        raise ValueError("AccountKey=c2VjcmV0 is malformed")

    with capture_logs() as logs:
        status, _ = answer(http.health(request(), storage))

    assert status == 503
    assert "AccountKey" not in repr(logs)


def test_health_without_checks_is_ok() -> None:
    assert answer(http.health(request()))[0] == 200
