"""The keys that lay one subscription out in one partition of the subscriptions table.

    PartitionKey = escape_key(subscription id)
    RowKey "state"                    the subscription's current state
    RowKey "history|{inverted seq}"   one history entry; newest sorts first
    RowKey "op|{escape(operation id)}" one delivery record

Standard library only (see `codec`).
"""

from __future__ import annotations

import re

STATE_ROW = "state"
HISTORY_PREFIX = "history|"
HISTORY_END = "history}"  # "}" follows "|": the exclusive upper bound of every history row
DELIVERY_PREFIX = "op|"
DELIVERY_END = "op}"  # the exclusive upper bound of every delivery row
MAX_TRANSACTION_OPS = 100  # the service's limit for one entity group transaction
_SEQ_LIMIT = 10**10  # 10 digits of history per subscription is far beyond any real lifetime

# Table keys forbid / \ # ? and control characters; "%" is escaped too so the mapping reverses.
_FORBIDDEN = frozenset("/\\#?%") | frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))


_NEEDS_ESCAPE = re.compile("[" + re.escape("".join(sorted(_FORBIDDEN))) + "]")


def escape_key(value: str) -> str:
    """A string safe as a PartitionKey or RowKey; `unescape_key` reverses it."""
    if _NEEDS_ESCAPE.search(value) is None:
        return value  # the common case (GUIDs): one regex scan, on every read and write
    return _NEEDS_ESCAPE.sub(lambda match: f"%{ord(match.group()):02X}", value)


def unescape_key(value: str) -> str:
    if "%" not in value:
        return value
    parts = value.split("%")
    return parts[0] + "".join(chr(int(part[:2], 16)) + part[2:] for part in parts[1:])


SHARD_DIGITS = "0123456789abcdef"  # subscription ids are GUIDs: their first hex digit spreads them evenly


def shard_bounds(shard: int, shards: int) -> tuple[str | None, str | None]:
    """The key range [low, high) of shard `shard` of `shards` (None: open); every key is in exactly one."""
    if not 0 <= shard < shards <= len(SHARD_DIGITS):
        raise ValueError(f"shard {shard} of {shards}: want 0 <= shard < shards <= {len(SHARD_DIGITS)}")
    cuts = [SHARD_DIGITS[n * len(SHARD_DIGITS) // shards] for n in range(1, shards)]
    return (None if shard == 0 else cuts[shard - 1]), (None if shard == shards - 1 else cuts[shard])


def history_row(seq: int) -> str:
    if not 0 < seq < _SEQ_LIMIT:
        raise ValueError(f"history sequence {seq} out of range")
    return f"{HISTORY_PREFIX}{_SEQ_LIMIT - seq:010d}"


def delivery_row(operation_id: str) -> str:
    return DELIVERY_PREFIX + escape_key(operation_id)
