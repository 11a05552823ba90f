"""How the query commands reach the tables: the query service of the target's worker.

`lifecycle.cli.target` builds it: locally the running stack's (a short retry budget, as a
person should not wait on a dead stack), with `--target azure` from the app settings.
Building connects to nothing, so the marketplace and the queue cost nothing here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lifecycle.cli import target
from lifecycle.cli.output import CliError, Context
from lifecycle.errors import InvalidQuery, TransientError, UnknownSubscription

if TYPE_CHECKING:
    from lifecycle.services.query import QueryService


@contextmanager
def query_service(obj: Context) -> Iterator[QueryService]:
    """The query service of the target; its expected failures become one-line CliErrors."""
    try:
        with target.worker(obj) as built:
            yield built.query
    except (InvalidQuery, UnknownSubscription) as error:
        raise CliError(str(error)) from None
    except TransientError as error:
        raise CliError(f"the tables do not answer: {error}") from None
