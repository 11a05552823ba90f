"""SDK errors onto the worker's error tree, for every Table Storage adapter; nothing from azure.* leaves them.

    EntityAlreadyExists, UpdateConditionNotSatisfied   -> ConcurrencyConflict
    any other azure.core error (5xx, timeouts, refused) -> StorageUnavailable (cause chained)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError

from lifecycle.errors import ConcurrencyConflict, StorageUnavailable

# Not found counts too: a guarded update of a row that is gone means the snapshot is stale.
_CONFLICT_CODES = frozenset(
    {"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ConditionNotMet", "ResourceNotFound", "EntityNotFound"}
)


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Map the SDK errors raised inside onto the worker's error tree, `doing` saying what failed."""
    try:
        yield
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None)
        code = str(getattr(code, "value", code) or "")  # the SDK sets an enum or a plain string
        if isinstance(exc, ResourceExistsError) or code in _CONFLICT_CODES:
            raise ConcurrencyConflict(f"{doing}: the row changed or already exists ({code})") from exc
        raise StorageUnavailable(f"{doing}: table storage answered {exc.status_code} {code}".rstrip()) from exc
    except AzureError as exc:
        raise StorageUnavailable(f"{doing}: table storage unreachable ({type(exc).__name__})") from exc
