"""`lifecycle serve`: the local stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import signal
import threading
from types import FrameType

import click

from lifecycle.cli.output import CliError, Context
from lifecycle.errors import QueueUnavailable
from lifecycle.logs import configure
from lifecycle.settings import Settings, SettingsError


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=7071, show_default=True, envvar="LIFECYCLE_PORT",
              help="Our HTTP server (the Functions host's port); 0 picks a free one.")
@click.option("--azurite-port", type=click.IntRange(0, 65535), default=0, envvar="LIFECYCLE_AZURITE_PORT",
              help="Azurite's table service [default: a free port].")
@click.option("--sandbox-port", type=click.IntRange(0, 65535), default=0, envvar="LIFECYCLE_SANDBOX_PORT",
              help="The sandbox's Fulfillment API and control surface [default: a free port].")
@click.option("--loops", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Processing loops: subscriptions processed at the same time.")
@click.pass_obj
def serve(obj: Context, port: int, azurite_port: int, sandbox_port: int, loops: int) -> None:
    """Run the local stack on 127.0.0.1: webhook and health on --port, the processing
    loops over a durable queue, Azurite for the tables, and the marketplace sandbox
    delivering to us. State is kept in the state directory; Ctrl-C stops everything."""
    # Imported here: the other commands start faster without the whole worker and sandbox.
    from lifecycle.local.stack import AlreadyRunning, LocalStack, StackOptions

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        raise CliError(str(error)) from None
    configure(obj.log_level or settings.log_level)
    options = StackOptions(state_dir=obj.state_dir, port=port, azurite_port=azurite_port,
                           sandbox_port=sandbox_port, loops=loops)
    stopping = _stop_on_signals()
    stack = LocalStack(options, settings)
    try:
        try:
            info = stack.start()
        except AlreadyRunning as error:
            raise CliError(str(error)) from None
        except (OSError, RuntimeError, ValueError, QueueUnavailable) as error:  # a port in use, Azurite failing, ...
            raise CliError(f"the stack could not start: {_why(error, port)}") from None
        read = ", ".join(str(path) for path in obj.settings_files) or "none (environment variables only)"
        click.echo(
            f"\nReady: webhook {info.url}/api/marketplace/webhook, state in {obj.state_dir}\n"
            f"Settings files: {read}\n"
            "In another terminal: `lifecycle sandbox plans`, then `lifecycle sandbox purchase --help`.\n"
            "Ctrl-C stops everything.\n",
            err=True,
        )
        while not stopping.wait(0.5):  # a timed wait: signal handlers run between the waits
            pass
    finally:
        stack.stop()


def _why(error: BaseException, port: int) -> str:
    """The error; for a port something else holds, with the option that moves the stack off it."""
    if not isinstance(error, OSError) or error.errno != errno.EADDRINUSE:
        return str(error)
    text = error.strerror or str(error)
    if port and f":{port}:" in text:
        return f"{text} (another `lifecycle serve`?): --port or LIFECYCLE_PORT picks another port (0: a free one)"
    return f"{text}: --port, --azurite-port and --sandbox-port pick other ports (0: a free one)"


def _stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM ask for a clean stop; a second one gives up on it."""
    stopping = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt  # impatient: stop() still runs on the way out
        stopping.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return stopping
