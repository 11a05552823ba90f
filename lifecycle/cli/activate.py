"""`lifecycle activate TOKEN`: what the landing page's back end does, from the command line.

Resolves the landing-page token, tells the product, activates and confirms, exactly as
`POST /api/marketplace/activate` does (the same service), against the local stack or Azure.
"""

from __future__ import annotations

import click

from lifecycle.cli.output import CliError, Context, console, emit_json, fields_table
from lifecycle.cli.target import worker
from lifecycle.errors import LifecycleError, MarketplaceBadRequest, MarketplaceNotFound
from lifecycle.product.events import subscription_json


@click.command()
@click.argument("token")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_obj
def activate(obj: Context, token: str, json_out: bool) -> None:
    """Activate the purchase TOKEN names (the landing page's ?token=, encoded or not)."""
    from lifecycle.services.activation import CannotActivate

    with worker(obj) as built:
        try:
            done = built.activation.activate(token)
        except (MarketplaceBadRequest, MarketplaceNotFound):
            raise CliError("the marketplace token is invalid or has expired") from None
        except CannotActivate as error:
            raise CliError(str(error)) from None
        except LifecycleError as error:
            raise CliError(f"activation failed, try again: {error}") from None
    subscription = subscription_json(done.subscription)
    if json_out:
        emit_json({"status": done.result.value, "subscription": subscription})
        return
    console().print(fields_table(f"Activation: {done.result.value}", subscription))
