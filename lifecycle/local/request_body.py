"""A request's body as the local server reads it: whole, within a size cap and one deadline.

Refusals (`BodyRefused`) are the Functions host's own answers, given before any function runs:

    413  a body over `cap`, refused from its Content-Length (or a chunk's size) before it is read
    400  a Content-Length or chunk size that is not a number, or a body that ended early
    408  a body that did not arrive within `timeout` seconds

The deadline is for the whole body, not per read: the socket's timeout bounds each read
only, and a client trickling a byte at a time would otherwise hold its thread for ever.
"""

from __future__ import annotations

import time
from email.message import Message
from io import BufferedIOBase


class BodyRefused(Exception):
    """The body is not read (or not whole): answer `status` with the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def has_body(headers: Message) -> bool:
    """Whether the request announces a body (one left unread puts its connection out of step)."""
    return _chunked(headers) or headers.get("Content-Length", "0").strip() not in ("", "0")


def read_body(stream: BufferedIOBase, headers: Message, *, cap: int, timeout: float) -> bytes:
    """The whole body; BodyRefused when it is too large, malformed, short or late."""
    deadline = time.monotonic() + timeout
    try:
        if _chunked(headers):
            return _read_chunked(stream, cap, deadline)
        length = _number(headers.get("Content-Length") or "0", 10)
        if length > cap:
            raise BodyRefused(413, f"body larger than {cap} bytes")
        body = _read_exactly(stream, length, deadline)
    except TimeoutError:
        raise BodyRefused(408, "the body did not arrive in time") from None
    if len(body) < length:
        raise BodyRefused(400, "the body ended early")
    return body


def _chunked(headers: Message) -> bool:
    return "chunked" in headers.get("Transfer-Encoding", "").lower()


def _read_exactly(stream: BufferedIOBase, length: int, deadline: float) -> bytes:
    """Up to `length` bytes (fewer if the client closes); TimeoutError past `deadline`."""
    body = bytearray()
    while len(body) < length:
        if time.monotonic() > deadline:
            raise TimeoutError
        part = stream.read1(length - len(body))  # at most one read from the socket
        if not part:
            break
        body += part
    return bytes(body)


def _read_chunked(stream: BufferedIOBase, cap: int, deadline: float) -> bytes:
    # The marketplace's sender may stream (.NET does for some content): a refused chunked
    # ChangePlan would be a 4xx, i.e. a rejection, so chunked bodies are read, not refused.
    body = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        size = _number(stream.readline(100).split(b";")[0].strip().decode("ascii", "replace"), 16)
        if len(body) + size > cap:
            raise BodyRefused(413, f"body larger than {cap} bytes")
        if size == 0:
            while stream.readline(8192) not in (b"\r\n", b"\n", b""):
                pass  # trailers: nothing of ours uses them
            return bytes(body)
        chunk = _read_exactly(stream, size, deadline)
        if len(chunk) < size:
            raise BodyRefused(400, "the body ended early")
        body += chunk
        stream.readline(3)  # the CRLF after each chunk


def _number(text: str, base: int) -> int:
    try:
        value = int(text, base)
    except ValueError:
        raise BodyRefused(400, "malformed Content-Length or chunk size") from None
    if value < 0:
        raise BodyRefused(400, "malformed Content-Length")
    return value
