"""HttpVeto: asks PRODUCT_VETO_URL whether it accepts a plan or quantity change.

The question is asked inside the marketplace's 10-second window, so it has a strict time
budget; no answer in time, an error, or an answer we cannot read all count as the
configured default (PRODUCT_VETO_DEFAULT, accept unless set). The budget holds for the
whole answer, not only for each read: a product that trickles its answer byte by byte is
cut off at its first read past the budget. The request is signed like the events; the
product answers {"accept": bool, "reason": str}, the reason kept to MAX_REASON_CHARS on
one line (it is stored with the refusal and logged).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from lifecycle.domain.events import ChangePlan, ChangeQuantity
from lifecycle.domain.model import Subscription
from lifecycle.logs import get_logger
from lifecycle.ports import Clock, ProductAnswer
from lifecycle.product.events import proposal_body
from lifecycle.product.signing import signed_headers

MAX_ANSWER_BYTES = 16_384  # {"accept": false, "reason": "..."} is a few hundred bytes
MAX_REASON_CHARS = 500


class AnswerTooSlow(httpx.TimeoutException):
    """The answer did not arrive whole within the budget."""


class HttpVeto:
    def __init__(self, url: str, secret: str, clock: Clock, *, default_accept: bool = True,
                 client: httpx.Client | None = None, wall_clock: Callable[[], float] = time.time) -> None:
        self._url = url
        self._secret = secret
        self._clock = clock
        self._default = default_accept
        self._client = client or httpx.Client(trust_env=False)
        self._wall_clock = wall_clock
        self._log = get_logger("lifecycle.product.veto")

    def review(
        self, event: ChangePlan | ChangeQuantity, subscription: Subscription, *, timeout: float
    ) -> ProductAnswer:
        log = self._log.bind(subscription_id=event.subscription_id, operation_id=event.operation_id,
                             action=event.action.value)
        if not self._secret:
            return self._fallback(log, "PRODUCT_SIGNING_SECRET is not set: the veto cannot be signed")
        if timeout <= 0:
            return self._fallback(log, "no time left in the marketplace's window")
        body = proposal_body(event, subscription, at=self._clock.now()).encode()
        headers = signed_headers(self._secret, body, now=self._wall_clock(), event_id=event.operation_id)
        try:
            status, answer = self._ask(body, headers, timeout)
        except (httpx.HTTPError, ValueError) as error:
            return self._fallback(log, f"{type(error).__name__}")
        if not isinstance(answer, dict) or not isinstance(answer.get("accept"), bool):
            return self._fallback(log, f"HTTP {status}" if answer is None else "an answer without a boolean 'accept'")
        reason = " ".join(str(answer.get("reason") or "").split())[:MAX_REASON_CHARS]
        log.info("veto.answered", accept=answer["accept"], reason=reason)
        if answer["accept"]:
            return ProductAnswer(True, reason)
        return ProductAnswer(False, f"the product refused: {reason}" if reason else "the product refused the change")

    def _ask(self, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, object]:
        """The answer's status and JSON (None unless 2xx), read whole within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._client.stream("POST", self._url, content=body, headers=headers,
                                 timeout=httpx.Timeout(timeout)) as response:
            if not 200 <= response.status_code < 300:
                return response.status_code, None
            received = bytearray()
            for chunk in response.iter_bytes():
                received += chunk
                if time.monotonic() > deadline:
                    raise AnswerTooSlow("the answer did not arrive whole within the budget")
                if len(received) > MAX_ANSWER_BYTES:
                    raise ValueError(f"an answer over {MAX_ANSWER_BYTES} bytes")
            return response.status_code, json.loads(received)

    def _fallback(self, log: Any, why: str) -> ProductAnswer:
        verdict = "accept" if self._default else "reject"
        log.warning("veto.default", reason=why, default=verdict)
        if self._default:
            return ProductAnswer(True, f"the product did not answer ({why}): accepted by default")
        return ProductAnswer(False, f"the product did not answer ({why}): refused by default")

    def close(self) -> None:
        self._client.close()
