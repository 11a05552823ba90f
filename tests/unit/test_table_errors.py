"""Azure SDK errors onto the worker's error tree (`lifecycle.store.table_errors`), for both adapters' rules."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from lifecycle.errors import ConcurrencyConflict, StorageUnavailable
from lifecycle.store.table_errors import translated


def answered(kind: type[HttpResponseError], status: int, code: str) -> HttpResponseError:
    error = kind(f"{status} {code}")
    error.status_code = status
    setattr(error, "error_code", code)  # noqa: B010  # set by the SDK from the answer; not declared
    return error


CONFLICTS = [
    answered(ResourceExistsError, 409, "EntityAlreadyExists"),
    answered(ResourceModifiedError, 412, "UpdateConditionNotSatisfied"),
    answered(HttpResponseError, 412, "ConditionNotMet"),
]
MISSING = [answered(ResourceNotFoundError, 404, "ResourceNotFound"),
           answered(ResourceNotFoundError, 404, "EntityNotFound")]
OUTAGES = [(HttpResponseError, 503, "ServerBusy"), (HttpResponseError, 500, "InternalError"),
           (ResourceNotFoundError, 404, "TableNotFound")]


def raised(error: Exception, **rules: bool) -> BaseException:
    with pytest.raises((ConcurrencyConflict, StorageUnavailable)) as caught, translated("commit", **rules):
        raise error
    assert caught.value.__cause__ is error  # the SDK's error stays readable in the traceback
    return caught.value


@pytest.mark.parametrize("missing_is_conflict", [True, False])
@pytest.mark.parametrize("error", CONFLICTS, ids=str)
def test_a_row_that_exists_or_changed_is_a_conflict_for_both_adapters(error: HttpResponseError,
                                                                     missing_is_conflict: bool) -> None:
    found = raised(error, missing_is_conflict=missing_is_conflict)
    assert isinstance(found, ConcurrencyConflict)
    assert str(found).startswith("commit: the row changed")


@pytest.mark.parametrize("error", MISSING, ids=str)
def test_a_vanished_row_is_a_conflict_for_the_store_and_an_outage_for_the_outbox(error: HttpResponseError) -> None:
    assert isinstance(raised(error), ConcurrencyConflict)
    assert isinstance(raised(error, missing_is_conflict=False), StorageUnavailable)


@pytest.mark.parametrize(("kind", "status", "code"), OUTAGES)
def test_other_answers_are_storage_outages_that_say_what_was_answered(
    kind: type[HttpResponseError], status: int, code: str
) -> None:
    found = raised(answered(kind, status, code))
    assert isinstance(found, StorageUnavailable)
    assert str(found) == f"commit: table storage answered {status} {code}"


def test_an_unreachable_service_is_an_outage() -> None:
    found = raised(ServiceRequestError("connection refused"))
    assert isinstance(found, StorageUnavailable)
    assert str(found) == "commit: table storage unreachable (ServiceRequestError)"
