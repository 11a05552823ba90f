"""HMAC-SHA256 signatures on what we send the product (events and veto requests).

    X-Lifecycle-Timestamp: 1714564800                      (Unix seconds, when it was sent)
    X-Lifecycle-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
    X-Lifecycle-Event-Id:  evt_…                           (the id to deduplicate by)

Signing the timestamp with the body lets the receiver refuse replays: a captured request
is only good within the replay window. `verify` is the recipe receivers follow.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Lifecycle-Timestamp"
SIGNATURE_HEADER = "X-Lifecycle-Signature"
EVENT_ID_HEADER = "X-Lifecycle-Event-Id"
SCHEME = "v1"
REPLAY_WINDOW_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(secret: str, body: bytes, *, now: float, event_id: str) -> dict[str, str]:
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        EVENT_ID_HEADER: event_id,
    }


def verify(secret: str, body: bytes, timestamp: str, signature_header: str, *, now: float,
           window: float = REPLAY_WINDOW_SECONDS) -> bool:
    """True when the signature is ours and the timestamp within `window` seconds of `now`."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > window:
        return False
    # Several signatures may be sent during a secret rotation: any matching one will do.
    expected = signature(secret, sent, body)
    offered = [part.strip() for part in signature_header.split(",")]
    return any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in offered)
