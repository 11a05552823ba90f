"""Which deployment a command talks to: the local stack (default) or Azure, by configuration.

    lifecycle ...                   the stack `make run` started on this state dir
    lifecycle --target azure ...    the app settings in the environment (the same names
                                    as the Function App's: STORAGE_*, SERVICEBUS_*, MARKETPLACE_*)

Every command that reads tables, the queue or the marketplace builds its worker here, so
each one works the same against both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from lifecycle.bootstrap import Worker, build
from lifecycle.cli.output import CliError, Context, Target, stack
from lifecycle.errors import QueueUnavailable
from lifecycle.local import state
from lifecycle.settings import Settings, SettingsError


def settings(obj: Context) -> Settings:
    """The settings of the worker the command should act as; a CliError says what is missing."""
    try:
        if obj.target is Target.AZURE:
            return Settings.from_env()
        info = stack(obj.state_dir)
        if not info.settings_env:
            raise CliError("the running stack predates this command: restart it (Ctrl-C, then `make run`)")
        secret = state.identity(obj.state_dir).client_secret
        return Settings.from_env({**info.settings_env, "MARKETPLACE_CLIENT_SECRET": secret})
    except SettingsError as error:
        raise CliError(f"configuration: {error}") from None


@contextmanager
def worker(obj: Context) -> Iterator[Worker]:
    """The worker built from `settings(obj)`; its store is closed afterwards.

    Locally a short retry budget: the stack is on this machine, and a person should not
    wait a minute on a dead one.
    """
    from lifecycle.store.table import TableSubscriptionStore  # the Azure SDK only where it is used

    config = settings(obj)
    store: TableSubscriptionStore | None = None
    if obj.target is Target.LOCAL:
        store = TableSubscriptionStore.from_connection_string(
            config.storage_connection_string, config.table_prefix, retry_total=1, connection_timeout=3
        )
        config = replace(config, api_max_attempts=min(config.api_max_attempts, 3))
    try:
        # The marketplace app's settings are asked for by the first API call, not here: an ops
        # question against Azure needs no client secret in the shell.
        built = build(config, store=store, marketplace_checked_at_first_call=True)
    except SettingsError as error:
        raise CliError(f"configuration: {error}") from None
    except QueueUnavailable as error:  # the local queue file is damaged
        raise CliError(str(error)) from None
    try:
        yield built
    except SettingsError as error:  # a command's first API call without the marketplace's settings
        raise CliError(f"configuration: {error}") from None
    finally:
        close = getattr(built.store, "close", None)
        if close is not None:
            close()
