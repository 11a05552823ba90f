"""`HttpMarketplaceApi`: the SaaS Fulfillment API v2 over httpx.

Every call carries api-version 2018-08-31, a bearer token, `content-type:
application/json`, a fresh `x-ms-requestid` per attempt and one `x-ms-correlationid`
per logical call (or the one given to `correlated`); both ids are logged, tokens and
bodies never are. Answers map onto `lifecycle.errors`:

    400 MarketplaceBadRequest   403 MarketplaceForbidden   404 MarketplaceNotFound
    409 MarketplaceConflict     other 4xx MarketplaceRejected (never retried)
    429, 5xx, timeouts, connection errors: retried per RetryPolicy, then MarketplaceUnavailable
    a 2xx body that is not a JSON object (a proxy's page, a cut answer): MarketplaceUnavailable
    a 2xx JSON body that cannot be understood: InvalidPayload

The transport is a port: tests hand in `httpx.Client(transport=httpx.MockTransport(...))`.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import httpx
import structlog

from lifecycle.domain.fingerprint import ListItem
from lifecycle.domain.model import Operation, Plan, ResolvedPurchase, Subscription
from lifecycle.errors import InvalidPayload, MarketplaceUnavailable
from lifecycle.marketplace import responses
from lifecycle.marketplace.auth import TokenProvider
from lifecycle.parsing import load_json, parse_listed_page, parse_operation, parse_resolved, parse_subscription
from lifecycle.retry import RetryPolicy, parse_retry_after
from lifecycle.settings import Settings

if TYPE_CHECKING:
    from lifecycle.ports import MarketplaceApi

API_VERSION = "2018-08-31"
_RETRIED_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class HttpMarketplaceApi:
    """The `MarketplaceApi` port over HTTP; one instance (and connection pool) per process."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        http: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        logger: Any = None,
        timeout: float = 10.0,
        correlation_id: str | None = None,
    ) -> None:
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        self._base_text = str(self._base)
        self._tokens = token_provider
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._retry = retry if retry is not None else RetryPolicy()
        self._log = logger if logger is not None else structlog.get_logger(__name__)
        self._correlation_id = correlation_id

    @classmethod
    def from_settings(
        cls, settings: Settings, token_provider: TokenProvider, *, logger: Any = None
    ) -> HttpMarketplaceApi:
        return cls(
            settings.marketplace_api_url,
            token_provider,
            retry=RetryPolicy(max_attempts=max(settings.api_max_attempts, 1)),
            timeout=settings.api_timeout_seconds,
            logger=logger,
        )

    def correlated(self, correlation_id: str) -> HttpMarketplaceApi:
        """The same client (same pool), sending `correlation_id` on every call, e.g. one event's activity id."""
        view = copy.copy(self)
        view._correlation_id, view._owns_http = correlation_id, False
        return view

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> HttpMarketplaceApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def resolve(self, marketplace_token: str) -> ResolvedPurchase:
        """`marketplace_token` exactly as it appeared in the landing page's query string.

        It is URL-decoded here, once. Pass the raw value: a value already decoded by a web
        framework would be decoded twice (a '%' in it would be mangled). `unquote`, not
        `unquote_plus`: the token is base64, where '+' is data, never a space.
        """
        headers = {"x-ms-marketplace-token": unquote(marketplace_token.strip())}
        response = self._call("POST", "saas/subscriptions/resolve", headers=headers)
        return parse_resolved(_object(response))

    def activate(self, subscription_id: str, plan_id: str, quantity: int | None = None) -> None:
        body: dict[str, object] = {"planId": plan_id}
        if quantity is not None:
            body["quantity"] = quantity
        self._on("POST", subscription_id, "/activate", json=body)

    def list_subscriptions(self) -> Iterator[list[ListItem]]:
        # All pages are one logical call: they share one correlation id.
        api = self if self._correlation_id else self.correlated(str(uuid.uuid4()))
        url: httpx.URL | None = httpx.URL(self._url("saas/subscriptions"))
        seen: set[str] = set()
        while url is not None:
            seen.add(str(url))
            subscriptions, next_link = responses.page(api._call("GET", url).content)
            if subscriptions:
                yield parse_listed_page(subscriptions)
            url = self._next(next_link, seen)

    def get_subscription(self, subscription_id: str) -> Subscription:
        return parse_subscription(_object(self._on("GET", subscription_id)), subscription_id)

    def list_available_plans(self, subscription_id: str) -> list[Plan]:
        return responses.plans(_object(self._on("GET", subscription_id, "/listAvailablePlans")))

    def change_plan(self, subscription_id: str, plan_id: str) -> str:
        # Exactly one field per PATCH: the API refuses a body that changes plan and quantity together.
        return responses.operation_id(self._on("PATCH", subscription_id, json={"planId": plan_id}))

    def change_quantity(self, subscription_id: str, quantity: int) -> str:
        return responses.operation_id(self._on("PATCH", subscription_id, json={"quantity": quantity}))

    def delete_subscription(self, subscription_id: str) -> str:
        return responses.operation_id(self._on("DELETE", subscription_id))

    def list_operations(self, subscription_id: str) -> list[Operation]:
        items = responses.operations(self._on("GET", subscription_id, "/operations").content)
        return [parse_operation(item, subscription_id) for item in items]

    def get_operation(self, subscription_id: str, operation_id: str) -> Operation:
        response = self._on("GET", subscription_id, operation_id=operation_id)
        return parse_operation(_object(response), subscription_id)

    def update_operation(self, subscription_id: str, operation_id: str, *, success: bool) -> None:
        self._on("PATCH", subscription_id, operation_id=operation_id,
                 json={"status": "Success" if success else "Failure"})

    def _on(self, method: str, subscription_id: str, suffix: str = "", *, operation_id: str | None = None,
            json: Mapping[str, object] | None = None) -> httpx.Response:
        """A call on one subscription (or one of its operations), with its ids bound to the log."""
        path = f"saas/subscriptions/{_segment(subscription_id)}{suffix}"
        context = {"subscription_id": subscription_id}
        if operation_id is not None:
            path += f"/operations/{_segment(operation_id)}"
            context["operation_id"] = operation_id
        return self._call(method, path, json=json, context=context)

    def _url(self, path: str) -> str:
        # Plain concatenation: paths are built here from quoted segments, and parsing a
        # URL (join, set_param) is a measurable share of our CPU per call.
        return f"{self._base_text}{path.lstrip('/')}?api-version={API_VERSION}"

    def _next(self, link: str, seen: set[str]) -> httpx.URL | None:
        if not link:
            return None
        url = self._base.join(link).copy_set_param("api-version", API_VERSION)
        if url.host.lower() != self._base.host.lower():  # the bearer token must not travel elsewhere
            raise InvalidPayload(f"@nextLink points to another host ({url.host}); refusing to send the token there")
        if str(url) in seen:  # a server repeating a link would otherwise page forever
            raise InvalidPayload("@nextLink repeats a page already read")
        return url

    def _call(self, method: str, target: str | httpx.URL, *, json: Mapping[str, object] | None = None,
              headers: Mapping[str, str] | None = None, context: Mapping[str, str] | None = None) -> httpx.Response:
        url = target if isinstance(target, httpx.URL) else httpx.URL(self._url(target))
        correlation_id = self._correlation_id or str(uuid.uuid4())
        log = self._log.bind(correlation_id=correlation_id, method=method, path=url.path, **(context or {}))
        status: int | None = None
        request_id = reason = ""
        for attempt in range(1, self._retry.max_attempts + 1):
            request_id = str(uuid.uuid4())
            log = log.bind(request_id=request_id, attempt=attempt)
            retry_after: float | None = None
            started = time.monotonic()
            try:
                response = self._http.request(method, url, json=json, headers={
                    "authorization": f"Bearer {self._tokens.token()}",
                    "content-type": "application/json",
                    "x-ms-requestid": request_id,
                    "x-ms-correlationid": correlation_id,
                    **(headers or {}),
                })
            except MarketplaceUnavailable as unavailable:  # no token this time; the next attempt may get one
                status, reason = unavailable.status, str(unavailable)
            except _RETRIED_ERRORS as failure:
                status, reason = None, type(failure).__name__
            else:
                status = response.status_code
                elapsed_ms = round((time.monotonic() - started) * 1000)
                if status < 400:
                    log.info("marketplace.call", status=status, elapsed_ms=elapsed_ms)
                    return response
                if status != 429 and status < 500:
                    refused = responses.rejection(response, request_id)
                    log.warning("marketplace.rejected", status=status, elapsed_ms=elapsed_ms, reason=str(refused))
                    raise refused
                reason = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            if attempt == self._retry.max_attempts:
                break
            delay = self._retry.delay(attempt, retry_after)
            log.warning("marketplace.retry", status=status, reason=reason, delay_s=round(delay, 3))
            self._retry.pause(delay)
        log.error("marketplace.unavailable", status=status, reason=reason)
        raise MarketplaceUnavailable(
            f"{method} {url.path} failed after {self._retry.max_attempts} attempts ({reason})",
            status=status, request_id=request_id,
        )


def _segment(value: str) -> str:
    """An id as one path segment: ids arrive in webhooks, so a '/' or '?' must not steer the request."""
    return quote(value.strip(), safe="")


def _object(response: httpx.Response) -> Mapping[str, Any]:
    """A 2xx body as the JSON object the API sends. One that is not (a proxy's error page, an answer
    cut short) was damaged on its way, not refused: transient, so the call is tried again later
    instead of failing its delivery for good."""
    try:
        return load_json(response.content)
    except InvalidPayload as error:
        raise MarketplaceUnavailable(f"HTTP {response.status_code} whose {error}") from None


if TYPE_CHECKING:  # mypy proves the adapter satisfies the port
    _port: type[MarketplaceApi] = HttpMarketplaceApi
