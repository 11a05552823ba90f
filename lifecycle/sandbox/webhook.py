"""The webhook sender: POSTs operations to the publisher's Connection Webhook like Microsoft.

Each delivery carries the operation's payload (fixed when the operation was made) with
`Authorization: Bearer <JWT>` signed by the Entra stand-in. The answer decides, through
the marketplace's operations book:

* ChangePlan/ChangeQuantity: 4xx rejects (Failed); 2xx leaves it InProgress until the
  publisher PATCHes or the auto-accept `auto_accept_seconds` after the first attempt; no
  answer within `timeout` (10 s, the same window) leaves it to the auto-accept.
* 5xx, timeouts and connection errors are retried after each of `retry_delays`
  (Microsoft retries for eight hours; tests compress that to a few short waits).

`times=N` sends the same payload N times over (duplicates, as observed in practice);
`deliver_many(..., shuffle=Random(seed))` sends in a scrambled order. `submit` delivers
in the background, which is how the marketplace's own changes go out; `wait` joins it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from random import Random
from typing import Any

import httpx
import structlog

from lifecycle.sandbox.entra import Entra
from lifecycle.sandbox.state import MarketplaceState

DEFAULT_RETRY_DELAYS = (0.1, 0.5, 2.0, 5.0)
MAX_ANSWER_CHARS = 200  # of what an answer said, kept in a DeliveryResult

log = structlog.get_logger("lifecycle.sandbox.webhook")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Every attempt of one `deliver` call: HTTP status (None: no answer), seconds, error, and
    what the answer said (its JSON `status`, `error` or `message`; "" without an answer)."""

    operation_id: str
    statuses: tuple[int | None, ...] = ()
    elapsed: tuple[float, ...] = ()
    errors: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()


class WebhookSender:
    """Delivers operations' webhooks to `url`; thread-safe; `close()` when done."""

    def __init__(
        self,
        marketplace: MarketplaceState,
        entra: Entra,
        url: str | None = None,
        *,
        timeout: float = 10.0,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        token_version: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.marketplace = marketplace
        self.entra = entra
        self.url = url
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self.token_version = token_version  # 2: azp + login.microsoftonline.com; 1: appid + sts.windows.net
        # trust_env off: a proxy from the environment must never see loopback deliveries.
        self._client = httpx.Client(trust_env=False, transport=transport)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")
        self._lock = threading.Lock()
        self._background: dict[str, Future[DeliveryResult]] = {}

    def deliver(self, operation: Mapping[str, Any] | str, *, times: int = 1) -> DeliveryResult:
        """POST the operation's webhook `times` times, each retried while it gets no 2xx/4xx."""
        operation_id = operation if isinstance(operation, str) else str(operation["id"])
        return self._deliver(operation_id, None, times)

    def deliver_raw(self, payload: Mapping[str, Any], *, times: int = 1) -> DeliveryResult:
        """POST any body, signed and retried the same way, outside the marketplace's books.

        For what Microsoft has been seen sending besides the documented payloads: minimal
        bodies, string quantities, undocumented actions such as `Subscribe` or `Transfer`.
        """
        return self._deliver(str(payload.get("id", "")), dict(payload), times)

    def _deliver(self, operation_id: str, raw: dict[str, Any] | None, times: int) -> DeliveryResult:
        if not self.url:
            raise ValueError("no webhook URL is configured")
        statuses: list[int | None] = []
        elapsed: list[float] = []
        errors: list[str] = []
        answers: list[str] = []
        for _ in range(times):
            for delay in (*self.retry_delays, None):
                status, seconds, error, answer = self._attempt(self.url, operation_id, raw)
                statuses.append(status)
                elapsed.append(seconds)
                errors.append(error)
                answers.append(answer)
                if (status is not None and status < 500) or delay is None:
                    break
                time.sleep(delay)
        return DeliveryResult(operation_id, tuple(statuses), tuple(elapsed), tuple(errors), tuple(answers))

    def deliver_many(
        self, operations: Iterable[Mapping[str, Any] | str], *, shuffle: Random | None = None, times: int = 1
    ) -> list[DeliveryResult]:
        """Deliver several, in order or scrambled by `shuffle` (ordering is not guaranteed)."""
        batch = list(operations)
        if shuffle is not None:
            shuffle.shuffle(batch)
        return [self.deliver(operation, times=times) for operation in batch]

    def submit(self, operation_id: str) -> Future[DeliveryResult]:
        """Deliver in the background; without a URL there is nobody to tell (nothing sent)."""
        try:
            future = self._pool.submit(self.deliver, operation_id) if self.url else _nothing_sent(operation_id)
        except RuntimeError:  # closed: the sandbox is stopping
            future = _nothing_sent(operation_id)
        with self._lock:
            self._background[operation_id] = future
        return future

    def wait(self, operation_id: str, timeout: float | None = 30.0) -> DeliveryResult:
        """The result of the latest background delivery of this operation."""
        with self._lock:
            future = self._background.get(operation_id)
        if future is None:
            raise KeyError(f"no background delivery of operation {operation_id}")
        return future.result(timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _attempt(self, url: str, operation_id: str, raw: dict[str, Any] | None) -> tuple[int | None, float, str, str]:
        token = self.entra.webhook_token(version=self.token_version)
        booked = raw is None  # an operation of the marketplace's: its books record the attempt
        payload = self.marketplace.delivery_started(operation_id) if raw is None else raw
        started = time.perf_counter()
        status: int | None = None
        error = answer = ""
        try:
            response = self._client.post(
                url, json=payload, headers={"Authorization": f"Bearer {token}"}, timeout=self.timeout
            )
            status, answer = response.status_code, _said(response)
        except httpx.TimeoutException:
            error = f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        finally:
            seconds = time.perf_counter() - started
            if booked:  # always close the attempt, or the operation would look forever in flight
                self.marketplace.delivery_finished(operation_id, status, seconds, error)
        log.info(
            "webhook delivered" if status is not None else "webhook not answered",
            operation_id=operation_id,
            subscription_id=payload.get("subscriptionId"),
            action=payload.get("action"),
            status=status,
            seconds=round(seconds, 3),
            error=error or None,
        )
        return status, seconds, error, answer


def _said(response: httpx.Response) -> str:
    """What an answer said: its JSON body's `status`, `error` or `message`, else its text, bounded."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        said = next((body[name] for name in ("status", "error", "message") if isinstance(body.get(name), str)), None)
        if said is not None:
            return str(said)[:MAX_ANSWER_CHARS]
    return response.text[:MAX_ANSWER_CHARS]


def _nothing_sent(operation_id: str) -> Future[DeliveryResult]:
    future: Future[DeliveryResult] = Future()
    future.set_result(DeliveryResult(operation_id))
    return future
