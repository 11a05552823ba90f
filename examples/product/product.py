"""A tiny example product: receives the lifecycle worker's events and answers its veto.

Standard library only. Settings come from the environment:

    PRODUCT_SIGNING_SECRET   the shared secret (the worker's PRODUCT_SIGNING_SECRET); required
    PRODUCT_PORT             where to listen on 127.0.0.1 (default 8080; 0 picks a free port)
    PRODUCT_STATE_FILE       where to keep what it knows (default product-state.json)
    PRODUCT_UNSUPPORTED_PLANS  comma-separated plan ids it refuses through the veto

    POST /events   a signed event: 401 if the signature or timestamp is wrong, 200 once kept
                   (a repeated event id is acknowledged and not applied again)
    POST /veto     a signed proposal: {"accept": bool, "reason": str}
    GET  /state    what it knows: seats and plan per tenant, and every event applied, in order

Run: PRODUCT_SIGNING_SECRET=... python examples/product/product.py
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPLAY_WINDOW_SECONDS = 300


def verify(secret: str, body: bytes, timestamp: str, signature: str, now: float) -> bool:
    """The recipe: HMAC-SHA256 over "<timestamp>.<body>", compared in constant time, fresh timestamp."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > REPLAY_WINDOW_SECONDS:
        return False
    expected = "v1=" + hmac.new(secret.encode(), f"{sent}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected.encode(), part.strip().encode()) for part in signature.split(","))


class Product:
    """Seats and plan per tenant, the ids of events seen, kept in a JSON file."""

    def __init__(self, path: Path, unsupported: set[str]) -> None:
        self.path = path
        self.unsupported = unsupported
        self.lock = threading.Lock()
        saved = json.loads(path.read_text()) if path.exists() else {}
        self.tenants: dict[str, dict[str, Any]] = saved.get("tenants", {})
        self.applied: list[dict[str, str]] = saved.get("applied", [])
        self.seen = {event["id"] for event in self.applied}

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply the event once; False if its id was seen before."""
        with self.lock:
            if event["id"] in self.seen:
                return False
            subscription = event["subscription"]
            tenant = subscription.get("beneficiaryTenantId") or subscription["id"]
            seats = self.tenants.setdefault(tenant, {})
            seats[subscription["id"]] = {
                "plan": subscription["planId"], "seats": subscription.get("quantity"),
                # The subscription in the event is the whole truth: only a Subscribed one may be used.
                "status": subscription["status"], "active": subscription["status"] == "Subscribed",
            }
            self.applied.append({"id": event["id"], "type": event["type"], "subscriptionId": subscription["id"]})
            self.seen.add(event["id"])
            self._save()
            return True

    def review(self, proposal: dict[str, Any]) -> dict[str, Any]:
        plan = proposal["proposed"].get("planId")
        if plan in self.unsupported:
            return {"accept": False, "reason": f"plan {plan} is not supported by this product"}
        return {"accept": True, "reason": ""}

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"tenants": self.tenants, "applied": self.applied}

    def _save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"tenants": self.tenants, "applied": self.applied}, indent=1))
        os.replace(temporary, self.path)  # atomic: a crash leaves the old file or the new one


def handler(product: Product, secret: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not verify(secret, body, self.headers.get("X-Lifecycle-Timestamp", ""),
                          self.headers.get("X-Lifecycle-Signature", ""), time.time()):
                return self._answer(401, {"error": "bad signature"})
            message = json.loads(body)
            if self.path == "/events":
                return self._answer(200, {"applied": product.apply(message)})
            if self.path == "/veto":
                return self._answer(200, product.review(message))
            return self._answer(404, {"error": "no such path"})

        def do_GET(self) -> None:
            if self.path == "/state":
                return self._answer(200, product.state())
            return self._answer(404, {"error": "no such path"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # quiet: the worker logs every delivery on its side

    return Handler


def main() -> None:
    secret = os.environ.get("PRODUCT_SIGNING_SECRET", "")
    if not secret:
        sys.exit("set PRODUCT_SIGNING_SECRET (the same as the worker's)")
    unsupported = {p.strip() for p in os.environ.get("PRODUCT_UNSUPPORTED_PLANS", "").split(",") if p.strip()}
    product = Product(Path(os.environ.get("PRODUCT_STATE_FILE", "product-state.json")), unsupported)
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PRODUCT_PORT", "8080"))),
                                 handler(product, secret))
    print(f"example product listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
