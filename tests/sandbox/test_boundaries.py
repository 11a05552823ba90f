"""The sandbox is the other party: it must not lean on the worker's code."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

import lifecycle.sandbox
from lifecycle.sandbox import Sandbox
from lifecycle.settings import Settings

PACKAGE = Path(lifecycle.sandbox.__file__).parent


def test_sandbox_imports_only_the_api_app_id_from_the_worker() -> None:
    borrowed = set()
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lifecycle"):
                if not node.module.startswith("lifecycle.sandbox"):
                    borrowed |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                names = {alias.name for alias in node.names if alias.name.startswith("lifecycle")}
                assert all(name.startswith("lifecycle.sandbox") for name in names), module
    assert borrowed <= {"lifecycle.settings.MARKETPLACE_API_APP_ID"}


def test_settings_env_points_the_worker_at_the_sandbox() -> None:
    with Sandbox() as sandbox:
        settings = Settings.from_env(sandbox.settings_env())
        assert settings.marketplace_api_url == sandbox.api_url
        assert settings.authority == sandbox.authority
        assert settings.openid_metadata == sandbox.openid_metadata_url
        assert Path(settings.authority_ca_bundle).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert (settings.client_id, settings.client_secret) == (sandbox.client_id, sandbox.client_secret)


def test_stopping_removes_the_certificate_and_closes_the_ports() -> None:
    sandbox = Sandbox().start()
    bundle, api_url = Path(sandbox.ca_bundle), sandbox.api_url
    with httpx.Client(trust_env=False) as client:
        assert client.get(f"{api_url}/saas/subscriptions").status_code == 401  # a kept-alive connection
        sandbox.stop()
        with pytest.raises(httpx.TransportError):
            client.get(f"{api_url}/saas/subscriptions")
    assert not bundle.exists()
