"""`lifecycle`, the one console script (pyproject.toml: `lifecycle = lifecycle.cli.main:run`)."""

from __future__ import annotations

from pathlib import Path

import click

from lifecycle import __version__
from lifecycle.cli.activate import activate
from lifecycle.cli.dlq import dlq
from lifecycle.cli.entitlements import entitlements
from lifecycle.cli.output import Context, Target
from lifecycle.cli.product import product
from lifecycle.cli.reconcile import reconcile
from lifecycle.cli.sandbox import sandbox
from lifecycle.cli.serve import serve
from lifecycle.cli.subscriptions import subscriptions
from lifecycle.local.state import default_state_dir
from lifecycle.logs import configure
from lifecycle.settings import LOG_LEVELS, SettingsError, load_local_files, log_level


def _level(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """As the worker reads LOG_LEVEL (WARN and FATAL too), so one environment serves both."""
    if value is None:
        return None
    try:
        return log_level(value)
    except SettingsError:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(LOG_LEVELS)}", ctx=ctx, param=param) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="LIFECYCLE_STATE_DIR",
    help="Where the local stack keeps its state and says where it runs [default: .local/ in the project].",
)
@click.option(
    "--target",
    type=click.Choice([t.value for t in Target]),
    envvar="LIFECYCLE_TARGET",
    default=Target.LOCAL.value,
    show_default=True,
    help="local: the stack `make run` started; azure: the deployment the app settings in the environment name.",
)
@click.option(
    "--log-level",
    envvar="LOG_LEVEL",
    metavar="LEVEL",
    callback=_level,
    help=f"Log lines on stderr from LEVEL up: {', '.join(LOG_LEVELS)} [default: ERROR; for `serve`, INFO].",
)
@click.version_option(__version__, prog_name="lifecycle")
@click.pass_context
def main(ctx: click.Context, state_dir: Path | None, target: str, log_level: str | None) -> None:
    """The subscription lifecycle worker for Microsoft's commercial marketplace.

    `lifecycle serve` runs the local stack (what `make run` does); in another terminal,
    `lifecycle sandbox ...` plays the marketplace against it and `lifecycle subscriptions
    show ID` prints our state.
    """
    files = ctx.obj if isinstance(ctx.obj, tuple) else ()  # what `run` read before the options were parsed
    ctx.obj = Context((state_dir or default_state_dir()).resolve(), Target(target), log_level, files)
    if ctx.invoked_subcommand != "serve":  # serve logs as the worker does (JSON off a terminal), from INFO
        # A one-shot command says what went wrong in its own one-line error; the services' warnings on
        # the way there would only repeat it, as JSON, before it. What is logged at ERROR (something
        # unexpected) still shows, readable; LOG_LEVEL (or --log-level) shows more, to debug.
        configure(log_level or "ERROR", json=False)


main.add_command(serve)
main.add_command(sandbox)
main.add_command(subscriptions)
main.add_command(entitlements)
main.add_command(activate)
main.add_command(product)
main.add_command(reconcile)
main.add_command(dlq)


def run() -> None:
    """The console script: `.env` and `local.settings.json` complete the environment first, so
    what they set (LOG_LEVEL, LIFECYCLE_TARGET, ...) counts for the options too."""
    try:
        files = load_local_files(default_state_dir().parent)  # the project in a checkout, else here
    except SettingsError as error:
        click.echo(f"Error: configuration: {error}", err=True)
        raise SystemExit(1) from None
    main(obj=files)


if __name__ == "__main__":
    run()
