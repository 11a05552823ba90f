"""SDK errors onto the worker's error tree, for every Table Storage adapter; nothing from azure.* leaves them.

    409, 412 (EntityAlreadyExists, UpdateConditionNotSatisfied)  -> ConcurrencyConflict
    EntityNotFound, ResourceNotFound, when `missing_is_conflict`  -> ConcurrencyConflict
    any other azure.core error (5xx, timeouts, refused)           -> StorageUnavailable (cause chained)

A vanished row is a conflict for the subscription store: a guarded update of a row that is
gone means the snapshot it was read from is stale, and the caller reads again. The product
outbox passes False: there a missing row is not a race it resolves by reading again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import AzureError, HttpResponseError

from lifecycle.errors import ConcurrencyConflict, StorageUnavailable

_CONFLICT_CODES = frozenset({"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ConditionNotMet"})
_MISSING_CODES = frozenset({"ResourceNotFound", "EntityNotFound"})


@contextmanager
def translated(doing: str, *, missing_is_conflict: bool = True) -> Iterator[None]:
    """Map the SDK errors raised inside onto the worker's error tree, `doing` saying what failed."""
    try:
        yield
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None)
        code = str(getattr(code, "value", code) or "")  # the SDK sets an enum or a plain string
        missing = missing_is_conflict and code in _MISSING_CODES
        if exc.status_code in (409, 412) or code in _CONFLICT_CODES or missing:
            raise ConcurrencyConflict(f"{doing}: the row changed or already exists ({code})") from exc
        raise StorageUnavailable(f"{doing}: table storage answered {exc.status_code} {code}".rstrip()) from exc
    except AzureError as exc:
        raise StorageUnavailable(f"{doing}: table storage unreachable ({type(exc).__name__})") from exc
