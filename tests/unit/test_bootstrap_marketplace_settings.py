"""When the marketplace app's settings are checked: at once for the Functions host, at the first call for the CLI."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from lifecycle.bootstrap import WEBHOOK_RETRY, build
from lifecycle.errors import MarketplaceUnavailable
from lifecycle.marketplace.auth import StaticTokenProvider
from lifecycle.marketplace.client import HttpMarketplaceApi
from lifecycle.retry import set_testing
from lifecycle.settings import Settings, SettingsError
from tests.fakes.queue import FakeQueue
from tests.fakes.store import FakeSubscriptionStore

NO_SECRET = Settings(tenant_id="11111111-2222-3333-4444-555555555555", client_id="app", client_secret="")


def test_the_host_refuses_to_build_without_the_client_secret() -> None:
    # So /api/health answers 503 for it instead of every webhook failing later.
    with pytest.raises(SettingsError, match="MARKETPLACE_CLIENT_SECRET is not set"):
        build(NO_SECRET, store=FakeSubscriptionStore(), queue=FakeQueue())


def test_a_cli_worker_runs_its_store_questions_without_the_secret_and_names_it_at_the_first_api_call() -> None:
    store = FakeSubscriptionStore()
    worker = build(NO_SECRET, store=store, queue=FakeQueue(), marketplace_checked_at_first_call=True)

    assert worker.store.runs() == []  # an ops question: no marketplace needed

    with pytest.raises(SettingsError, match="MARKETPLACE_CLIENT_SECRET is not set"):
        worker.api.get_subscription("11111111-2222-3333-4444-555555555555")


def test_the_webhook_s_api_calls_wait_half_a_second_at_most_whatever_retry_after_asks() -> None:
    waited: list[float] = []
    answers = iter([httpx.Response(429, headers={"Retry-After": "20"}), httpx.Response(429)])
    api = HttpMarketplaceApi("https://marketplace.test/api", StaticTokenProvider("t"),
                             retry=replace(WEBHOOK_RETRY, sleep=waited.append),
                             http=httpx.Client(transport=httpx.MockTransport(lambda _: next(answers))))
    previous = set_testing(False)  # the pause itself is under test: recorded, not slept
    try:
        with pytest.raises(MarketplaceUnavailable):
            api.get_subscription("s1")
    finally:
        set_testing(previous)

    assert len(waited) == 1
    assert 0 < waited[0] <= 0.5
