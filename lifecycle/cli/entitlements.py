"""`lifecycle entitlements TENANT`: what a customer tenant may use now, per offer."""

from __future__ import annotations

import click

from lifecycle.cli.grid import Col, Grid
from lifecycle.cli.output import Context, console, emit_json
from lifecycle.cli.queries import guid, query_service


@click.command()
@click.argument("tenant_id", metavar="TENANT_ID", callback=guid)
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_obj
def entitlements(obj: Context, tenant_id: str, json_out: bool) -> None:
    """Per offer, the latest Subscribed subscription whose beneficiary is TENANT_ID
    (suspended, ended and not yet activated ones grant nothing)."""
    from lifecycle.entrypoints.ops import entitlements_json

    with query_service(obj) as service:
        found = service.entitlements(tenant_id)
    if json_out:
        emit_json(entitlements_json(tenant_id, found))
        return
    table = Grid(Col("offer", ident=True), Col("plan", ident=True), Col("qty"), Col("term end", spare=3),
                 Col("subscription", ident=True), Col("trial", spare=2), Col("test", spare=1),
                 title=f"Entitlements of {tenant_id} ({len(found)})")
    for e in found:
        table.add_row(e.offer_id, e.plan_id, "-" if e.quantity is None else str(e.quantity),
                      e.term_end.isoformat() if e.term_end else "-", e.subscription_id,
                      "yes" if e.is_free_trial else "no", "yes" if e.is_test else "no")
    console().print(table)
