"""The composition root: the only place that picks adapters and wires services.

Building connects to nothing: clients open their connections on first use, so an
import or a cold start never fails on an outage (an import error in `function_app.py`
would leave an Azure app with zero functions). Tests pass their own adapters in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle.clock import SystemClock
from lifecycle.logs import configure
from lifecycle.marketplace.auth import DeferredTokenProvider, MsalTokenProvider, TokenProvider
from lifecycle.marketplace.client import HttpMarketplaceApi
from lifecycle.ports import Clock, DeadLetters, MarketplaceApi, Product, ProductVeto, Queue, SubscriptionStore
from lifecycle.product import NoopProduct
from lifecycle.retry import RetryPolicy
from lifecycle.services.activation import ActivationService
from lifecycle.services.dead_letters import DeadLetterService
from lifecycle.services.ingress import WebhookService
from lifecycle.services.policy import ChangePolicy
from lifecycle.services.processing import ProcessingService
from lifecycle.services.query import QueryService
from lifecycle.services.reconcile import ReconcileService
from lifecycle.settings import ReconcileOperations, Settings, SettingsError, VetoDefault, WebhookAuth
from lifecycle.store import table_service
from lifecycle.store.table import TableSubscriptionStore
from lifecycle.telemetry import Telemetry, TracedMarketplaceApi, TracedQueue, TracedStore
from lifecycle.telemetry import configure as configure_telemetry
from lifecycle.telemetry import current as current_telemetry
from lifecycle.webhook.authentication import WebhookAuthenticator
from lifecycle.webhook.signing_keys import SigningKeys

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

    from lifecycle.product.dispatcher import Dispatcher
    from lifecycle.product.outbox import TableOutbox


WEBHOOK_STORAGE: dict[str, Any] = {"retry_total": 1, "retry_backoff_factor": 0.2, "timeout": 6,
                                   "connection_timeout": 2, "read_timeout": 3}
"""The webhook's Table Storage client, inside the 10-second window: one quick retry and short
timeouts, so an outage is a 503 within the window. The SDK's defaults (10 retries, 300 s
timeouts) would hold the request, and a refusal, well past it. Reads and writes take tens of
milliseconds when storage is well."""

WEBHOOK_RETRY = RetryPolicy(max_attempts=2, max_delay=0.5, max_retry_after=0.5)
"""Inside the webhook's 10-second window: one retry at most, soon, whatever a Retry-After asks
(20 s of it would spend the window; a 503 lets the marketplace come back instead)."""


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
    product: Product
    activation: ActivationService
    outbox: TableOutbox | None  # where product events wait (None: no PRODUCT_EVENTS_URL)
    dead_letters: DeadLetters | None = None  # the queue's dead letters (None: a queue that keeps none readable)

    @property
    def query(self) -> QueryService:
        """The ops questions over the store; stateless, so made on each use."""
        return QueryService(self.store, self.clock)

    @property
    def dead_letter_service(self) -> DeadLetterService:
        """Dead-lettered and failed deliveries, and their replay; stateless, so made on each use."""
        return DeadLetterService(self.store, self.queue, self.dead_letters)


def build(
    settings: Settings,
    *,
    store: SubscriptionStore | None = None,
    webhook_store: SubscriptionStore | None = None,
    api: MarketplaceApi | None = None,
    webhook_api: MarketplaceApi | None = None,
    queue: Queue | None = None,
    product: Product | None = None,
    clock: Clock | None = None,
    on_product_event: Callable[[str], None] | None = None,
    telemetry: Telemetry | None = None,
    marketplace_checked_at_first_call: bool = False,
) -> Worker:
    """`on_product_event(subscription_id)` runs after each product event is written (the local
    stack wakes its dispatcher with it). With `telemetry` enabled, the store, the API and the
    queue are wrapped in traced decorators; without, nothing is wrapped and tracing costs nothing.
    `marketplace_checked_at_first_call` (CLI commands): the marketplace app's settings (tenant,
    client id, secret) are checked at the first API call instead of now, so a command that
    never calls the API runs without them; the Functions host checks them at once (health)."""
    clock = clock or SystemClock()
    # The webhook's own client unless a store is handed in (tests; the local stack hands in both).
    webhook_store = webhook_store or store or _store(settings, **WEBHOOK_STORAGE)
    store = store or _store(settings)
    queue = queue or _queue(settings)
    dead_letters = queue if isinstance(queue, DeadLetters) else None  # before any tracing wrapper hides it
    if api is None or webhook_api is None:
        # One MSAL app per process: its token cache is shared.
        tokens: TokenProvider = (DeferredTokenProvider(lambda: MsalTokenProvider(settings))
                                 if marketplace_checked_at_first_call else MsalTokenProvider(settings))
        api = api or HttpMarketplaceApi.from_settings(settings, tokens)
        webhook_api = webhook_api or HttpMarketplaceApi(
            settings.marketplace_api_url, tokens, retry=WEBHOOK_RETRY, timeout=settings.webhook_api_timeout_seconds)
    if telemetry is not None and telemetry.enabled:
        store, queue = TracedStore(store, telemetry), TracedQueue(queue, telemetry)
        webhook_store = TracedStore(webhook_store, telemetry)
        api, webhook_api = TracedMarketplaceApi(api, telemetry), TracedMarketplaceApi(webhook_api, telemetry)
    outbox = _outbox(settings, clock, on_product_event) if product is None else None
    product = product or outbox or NoopProduct()
    processing = ProcessingService(store, api, product, clock)
    policy = ChangePolicy(webhook_api, veto=_veto(settings, clock),
                          veto_timeout_seconds=settings.product_veto_timeout_seconds)
    webhook = WebhookService(
        webhook_store,
        queue,
        policy,
        clock,
        authenticator=_authenticator(settings),
        enqueue_delay=timedelta(seconds=settings.enqueue_delay_seconds),
    )
    all_operations = settings.reconcile_check_operations is ReconcileOperations.ACTIVE
    reconcile = ReconcileService(store, api, clock, product=product, all_operations=all_operations,
                                 stuck_after=timedelta(hours=settings.reconcile_stuck_after_hours),
                                 settle=timedelta(seconds=settings.reconcile_settle_seconds))
    activation = ActivationService(store, api, product, clock)
    return Worker(settings, store, api, queue, clock, processing, webhook, reconcile, product, activation, outbox,
                  dead_letters)


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
                configure(settings.log_level, sink=settings.log_sink, library_level=settings.library_log_level)
                traced = current_telemetry() if configure_telemetry(settings) else None
                tried = _immediate_dispatch() if settings.product_events_url else None
                _built.append(build(settings, telemetry=traced, on_product_event=tried))
    return _built[0]


def _immediate_dispatch() -> Callable[[str], None]:
    """Azure has no dispatcher thread to wake: each product event is tried right after it is
    written, within 2 s and never failing the caller; the minute timer is the safety net."""
    from lifecycle.product.immediate import ImmediateDispatch

    return ImmediateDispatch(lambda: dispatcher(worker()), budget_seconds=2.0)


def dispatcher(worker: Worker) -> Dispatcher | None:
    """The outbox's dispatcher, or None when no product is configured."""
    if worker.outbox is None:
        return None
    from lifecycle.product.dispatcher import Dispatcher
    from lifecycle.product.sender import HttpEventSender

    settings = worker.settings
    check_product(settings)
    sender = HttpEventSender(settings.product_events_url, settings.product_signing_secret)
    return Dispatcher(worker.outbox, sender, worker.clock, max_retry=settings.product_retry_max_seconds)


def check_product(settings: Settings) -> None:
    """SettingsError when product events are configured but could not be signed: the dispatcher
    would fail every minute while events pile up (the webhook and processing go on regardless)."""
    if settings.product_events_url and not settings.product_signing_secret:
        raise SettingsError("PRODUCT_EVENTS_URL needs PRODUCT_SIGNING_SECRET: events are signed")


def _outbox(settings: Settings, clock: Clock, on_written: Callable[[str], None] | None) -> TableOutbox | None:
    if not settings.product_events_url:
        return None
    from lifecycle.product.outbox import TableOutbox

    return TableOutbox(_table_service(settings), settings.table_prefix, clock, on_written=on_written)


def _veto(settings: Settings, clock: Clock) -> ProductVeto | None:
    if not settings.product_veto_url:
        return None
    from lifecycle.product.veto import HttpVeto

    return HttpVeto(settings.product_veto_url, settings.product_signing_secret, clock,
                    default_accept=settings.product_veto_default is VetoDefault.ACCEPT)


def _store(settings: Settings, **options: Any) -> SubscriptionStore:
    return TableSubscriptionStore(_table_service(settings, **options), settings.table_prefix)


def _table_service(settings: Settings, **options: Any) -> TableServiceClient:
    """A client of the configured storage account: by connection string, else by managed identity."""
    if settings.storage_connection_string:
        return table_service.from_connection_string(settings.storage_connection_string, **options)
    if settings.storage_table_endpoint:
        return table_service.from_endpoint(settings.storage_table_endpoint, _azure_credential(), **options)
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
