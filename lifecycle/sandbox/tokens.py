"""Opaque strings the marketplace hands out: landing-page tokens and continuation tokens.

Both are shaped like Microsoft's and both contain characters that must be URL-encoded
in a query string, so a publisher that forgets to encode or decode them fails here as
it would in production.
"""

from __future__ import annotations

import base64
import re
import secrets

from lifecycle.sandbox.errors import bad_request


def landing_page_token() -> str:
    """Standard base64 (not URL-safe), always with `+`, `/` and `=` in it."""
    while True:
        token = base64.b64encode(secrets.token_bytes(64)).decode()  # 64 bytes end in `==`
        if "+" in token and "/" in token:
            return token


_OFFSET = re.compile(r"#TRC:(\d+)#")


def continuation(offset: int) -> str:
    """A list continuation token; it looks like the service's (a Cosmos DB token as JSON)."""
    rid = base64.b64encode(secrets.token_bytes(9)).decode()
    return f'[{{"token":"+RID:~{rid}#RT:1#TRC:{offset}#ISV:2","range":{{"min":"","max":"FF"}}}}]'


def offset(token: str | None) -> int:
    """Where the page a continuation token names starts; 400 for a token we did not issue."""
    if not token:
        return 0
    match = _OFFSET.search(token)
    if match is None:
        raise bad_request("The continuation token is not valid", "continuationToken")
    return int(match.group(1))
