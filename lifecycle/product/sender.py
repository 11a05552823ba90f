"""HttpEventSender: one signed POST of one event to PRODUCT_EVENTS_URL; any 2xx is an acknowledgement."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from lifecycle.product.signing import signed_headers


class DeliveryFailed(Exception):
    """The product did not acknowledge the event; the message is what ops see on the row."""


class HttpEventSender:
    def __init__(self, url: str, secret: str, *, timeout: float = 10.0, client: httpx.Client | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("product events are signed: set PRODUCT_SIGNING_SECRET")
        self._url = url
        self._secret = secret
        self._client = client or httpx.Client(timeout=timeout, trust_env=False)
        self._wall_clock = wall_clock

    def send(self, event_id: str, body: str, *, timeout: float | None = None) -> None:
        """POST within `timeout` seconds (None: the client's own), or raise DeliveryFailed."""
        data = body.encode()
        headers = signed_headers(self._secret, data, now=self._wall_clock(), event_id=event_id)
        limit = httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout)
        try:
            response = self._client.post(self._url, content=data, headers=headers, timeout=limit)
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}".rstrip(": ")) from error
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")

    def close(self) -> None:
        self._client.close()
