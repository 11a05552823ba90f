"""How the query commands reach the tables: the query service on the target's store.

Locally only the stack's Azurite is needed (no marketplace, no queue), so the store is
opened from stack.json alone, with a short retry budget: a person should not wait on a
dead stack. `--target azure` builds the worker from the app settings in the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lifecycle.cli.output import CliError, Context, Target, stack
from lifecycle.errors import InvalidQuery, TransientError, UnknownSubscription

if TYPE_CHECKING:
    from lifecycle.services.query import QueryService


@contextmanager
def query_service(obj: Context) -> Iterator[QueryService]:
    """The query service of the target; its expected failures become one-line CliErrors."""
    from lifecycle.clock import SystemClock
    from lifecycle.services.query import QueryService
    from lifecycle.store.table import TableSubscriptionStore  # the Azure SDK only where it is used

    try:
        if obj.target is Target.AZURE:
            from lifecycle.cli import target

            with target.worker(obj) as built:
                yield built.query
            return
        info = stack(obj.state_dir)
        with TableSubscriptionStore.from_connection_string(
            info.storage_connection_string, info.table_prefix, retry_total=1, connection_timeout=3
        ) as store:
            yield QueryService(store, SystemClock())
    except (InvalidQuery, UnknownSubscription) as error:
        raise CliError(str(error)) from None
    except TransientError as error:
        raise CliError(f"the tables do not answer: {error}") from None
