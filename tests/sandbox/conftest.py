"""Fixtures for the sandbox's tests: a started sandbox, a webhook receiver, an API client."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from lifecycle.sandbox import Sandbox
from lifecycle.settings import MARKETPLACE_API_APP_ID
from tests.sandbox.receiver import Receiver

SCOPE = f"{MARKETPLACE_API_APP_ID}/.default"
API_VERSION = "2018-08-31"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def sandbox(receiver: Receiver) -> Iterator[Sandbox]:
    # Compressed time: retries after 10 ms and 20 ms, webhook answers awaited 2 s.
    with Sandbox(receiver.url, retry_delays=(0.01, 0.02), webhook_timeout=2.0) as sandbox:
        yield sandbox


def trusting(sandbox: Sandbox) -> ssl.SSLContext:
    """TLS settings that trust the sandbox's certificate and nothing else."""
    return ssl.create_default_context(cafile=sandbox.ca_bundle)


def access_token(sandbox: Sandbox) -> str:
    """A Fulfillment API token from the sandbox's token endpoint, as any client gets one."""
    form = {
        "grant_type": "client_credentials",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "scope": SCOPE,
    }
    with httpx.Client(verify=trusting(sandbox), trust_env=False) as client:
        response = client.post(f"{sandbox.authority}/oauth2/v2.0/token", data=form)
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client for the sandbox's API: bearer token and api-version on every call."""
    headers = {"Authorization": f"Bearer {access_token(sandbox)}"}
    with httpx.Client(
        base_url=sandbox.api_url, headers=headers, params={"api-version": API_VERSION}, trust_env=False
    ) as client:
        yield client


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `check()` holds (polling), or fail."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
