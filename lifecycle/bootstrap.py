"""The composition root: the only place that picks adapters and wires services.

Building connects to nothing: clients open their connections on first use, so an
import or a cold start never fails on an outage (an import error in `function_app.py`
would leave an Azure app with zero functions). Tests pass their own adapters in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from lifecycle.clock import SystemClock
from lifecycle.logs import configure
from lifecycle.marketplace.auth import MsalTokenProvider
from lifecycle.marketplace.client import HttpMarketplaceApi
from lifecycle.marketplace.retry import RetryPolicy
from lifecycle.ports import Clock, MarketplaceApi, Product, Queue, SubscriptionStore
from lifecycle.product import NoopProduct
from lifecycle.services.ingress import WebhookService
from lifecycle.services.policy import ChangePolicy
from lifecycle.services.processing import ProcessingService
from lifecycle.services.reconcile import ReconcileService
from lifecycle.settings import Settings, SettingsError, WebhookAuth
from lifecycle.store.table import TableSubscriptionStore
from lifecycle.webhook.authentication import WebhookAuthenticator
from lifecycle.webhook.signing_keys import SigningKeys


@dataclass(frozen=True, slots=True)
class Worker:
    settings: Settings
    store: SubscriptionStore
    api: MarketplaceApi
    queue: Queue
    clock: Clock
    processing: ProcessingService
    webhook: WebhookService
    reconcile: ReconcileService


def build(
    settings: Settings,
    *,
    store: SubscriptionStore | None = None,
    api: MarketplaceApi | None = None,
    webhook_api: MarketplaceApi | None = None,
    queue: Queue | None = None,
    product: Product | None = None,
    clock: Clock | None = None,
) -> Worker:
    clock = clock or SystemClock()
    store = store or _store(settings)
    queue = queue or _queue(settings)
    if api is None or webhook_api is None:
        tokens = MsalTokenProvider(settings)  # one MSAL app per process: its token cache is shared
        api = api or HttpMarketplaceApi.from_settings(settings, tokens)
        # Inside the webhook's 10-second window: short timeout, one retry at most.
        webhook_api = webhook_api or HttpMarketplaceApi(
            settings.marketplace_api_url,
            tokens,
            retry=RetryPolicy(max_attempts=2, max_delay=0.5),
            timeout=settings.webhook_api_timeout_seconds,
        )
    product = product or NoopProduct()
    processing = ProcessingService(store, api, product, clock)
    webhook = WebhookService(
        store,
        queue,
        ChangePolicy(webhook_api),
        clock,
        authenticator=_authenticator(settings),
        enqueue_delay=timedelta(seconds=settings.enqueue_delay_seconds),
    )
    reconcile = ReconcileService.from_settings(settings, store, api, clock, product)
    return Worker(settings, store, api, queue, clock, processing, webhook, reconcile)


_built: list[Worker] = []
_building = threading.Lock()


def worker() -> Worker:
    """The process's worker, built from the environment on first use (Azure Functions).

    Locked: the host calls functions from a thread pool, and two first calls must not
    each build clients (an MSAL app, a Service Bus connection) of which one would leak.
    """
    if not _built:
        with _building:
            if not _built:
                settings = Settings.from_env()
                configure(settings.log_level)
                _built.append(build(settings))
    return _built[0]


def _store(settings: Settings) -> SubscriptionStore:
    if settings.storage_connection_string:
        return TableSubscriptionStore.from_connection_string(settings.storage_connection_string, settings.table_prefix)
    if settings.storage_table_endpoint:
        return TableSubscriptionStore.from_endpoint(
            settings.storage_table_endpoint, _azure_credential(), settings.table_prefix
        )
    raise SettingsError("set STORAGE_CONNECTION_STRING, or STORAGE_TABLE_ENDPOINT for managed identity")


def _queue(settings: Settings) -> Queue:
    from lifecycle.queue.servicebus import ServiceBusQueue  # the SDK loads only where it is used

    if settings.servicebus_connection_string:
        return ServiceBusQueue.from_connection_string(settings.servicebus_connection_string, settings.servicebus_queue)
    if settings.servicebus_namespace:
        namespace, name = settings.servicebus_namespace, settings.servicebus_queue
        return ServiceBusQueue.from_namespace(namespace, _azure_credential(), name)
    if settings.local_queue_path:
        from lifecycle.local.queue import LocalQueue

        return LocalQueue(Path(settings.local_queue_path))
    raise SettingsError("set SERVICEBUS_CONNECTION_STRING or SERVICEBUS_NAMESPACE (or LOCAL_QUEUE_PATH locally)")


def _authenticator(settings: Settings) -> WebhookAuthenticator | None:
    if settings.webhook_auth is WebhookAuth.API:
        return None
    if not settings.tenant_id or not settings.client_id:
        raise SettingsError("WEBHOOK_AUTH=jwt needs MARKETPLACE_TENANT_ID and MARKETPLACE_CLIENT_ID")
    import ssl

    import httpx

    bundle = settings.authority_ca_bundle
    verify: Any = ssl.create_default_context(cafile=bundle) if bundle else True
    keys = SigningKeys(settings.openid_metadata, http=httpx.Client(timeout=3.0, verify=verify))
    return WebhookAuthenticator(keys, tenant_id=settings.tenant_id, client_id=settings.client_id)


def _azure_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
