"""How the query commands reach the tables: the query service of the target's worker.

`lifecycle.cli.target` builds it: locally the running stack's (a short retry budget, as a
person should not wait on a dead stack), with `--target azure` from the app settings.
Building connects to nothing, so the marketplace and the queue cost nothing here.

Values are checked by the query service's own rules (`query_filter`) as click parses
them, so a bad one is a usage error that names the CLI's option, not the HTTP API's
parameter, and is refused before any stack is looked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from lifecycle.cli import target
from lifecycle.cli.output import CliError, Context
from lifecycle.errors import InvalidQuery, TransientError, UnknownSubscription
from lifecycle.services.query_filter import InvalidValue, parse_guid

if TYPE_CHECKING:
    from lifecycle.services.query import QueryService

UNKNOWN_HINT = "a subscription is known after its first webhook, its activation, or a `lifecycle reconcile` run"


Check = Callable[[click.Context, click.Parameter, Any], Any]


def checked(parse: Callable[[str], Any]) -> Check:
    """A click callback: the value as `parse` returns it; what it refuses is a usage error."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except InvalidValue as error:
            raise click.BadParameter(error.problem, ctx=ctx, param=param) from None

    return check


def _guid(text: str) -> str:
    parse_guid(text, "id")
    return text.strip()  # as given: stored ids are the marketplace's own spelling, compared exactly


guid = checked(_guid)


@contextmanager
def query_service(obj: Context) -> Iterator[QueryService]:
    """The query service of the target; its expected failures become one-line CliErrors."""
    try:
        with target.worker(obj) as built:
            yield built.query
    except UnknownSubscription as error:
        raise CliError(f"{error} ({UNKNOWN_HINT})") from None
    except InvalidQuery as error:
        raise CliError(str(error)) from None
    except TransientError as error:
        raise CliError(f"the tables do not answer: {error}") from None
