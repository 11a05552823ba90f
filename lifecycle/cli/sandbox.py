"""`lifecycle sandbox ...`: play the marketplace against the running stack.

A change delivers its signed webhook to our server, as Microsoft would, and the command
waits (up to WAIT_SECONDS) for the operation to become final: after our ack, our 4xx,
or the 10-second auto-accept. `--no-deliver` changes the marketplace's truth without a
webhook (a delivery Microsoft never made); `redeliver` sends an old one again.
"""

from __future__ import annotations

from typing import Any

import click

from lifecycle.cli.grid import Col, Grid
from lifecycle.cli.output import Context, SandboxControl, console, emit_json, fields_table, stack, wait_for

WAIT_SECONDS = 15.0  # the auto-accept's 10 s, plus our processing and some slack
PENDING = ("NotStarted", "InProgress")

json_option = click.option("--json", "json_out", is_flag=True, help="Print JSON.")
no_deliver_option = click.option("--no-deliver", is_flag=True,
                                 help="Change the truth without a webhook (a missed delivery).")
force_option = click.option("--force", is_flag=True,
                            help="Skip the marketplace's own plan/seat checks, so our webhook gets to refuse it.")


@click.group()
def sandbox() -> None:
    """Play the marketplace: purchases, changes, missed and repeated deliveries."""


@sandbox.command()
@json_option
@click.pass_obj
def plans(obj: Context, json_out: bool) -> None:
    """The catalog: offers, plans, per-seat bounds."""
    catalog: dict[str, list[dict[str, Any]]] = _sandbox(obj).get("/catalog")
    rows = [
        {"offerId": offer, "planId": plan["planId"], "displayName": plan["displayName"],
         "isPricePerSeat": plan["isPricePerSeat"], "minQuantity": plan["minQuantity"],
         "maxQuantity": plan["maxQuantity"], "hasFreeTrials": plan["hasFreeTrials"]}
        for offer, offer_plans in catalog.items() for plan in offer_plans
    ]
    if json_out:
        emit_json(rows)
        return
    table = Grid(Col("offer", ident=True), Col("plan", ident=True), Col("name"), Col("per seat", spare=2),
                 Col("seats"), Col("free trial", spare=1), title="Catalog")
    for row in rows:
        seats = f"{row['minQuantity']}-{row['maxQuantity']}" if row["isPricePerSeat"] else "-"
        table.add_row(row["offerId"], row["planId"], row["displayName"], "yes" if row["isPricePerSeat"] else "no",
                      seats, "yes" if row["hasFreeTrials"] else "no")
    console().print(table)


@sandbox.command()
@click.option("--offer", required=True, help="Offer id, e.g. contoso-seats (see `plans`).")
@click.option("--plan", required=True, help="Plan id within the offer.")
@click.option("--quantity", type=int, help="Seats, for a per-seat plan.")
@click.option("--activated", is_flag=True, help="Already Subscribed (as if our landing page had activated it).")
@click.option("--csp", is_flag=True, help="Bought by a CSP partner for a customer.")
@click.option("--term", default="P1M", show_default=True, help="Billing term: P1M, P1Y, P2Y, P3Y.")
@json_option
@click.pass_obj
def purchase(obj: Context, offer: str, plan: str, quantity: int | None, activated: bool, csp: bool, term: str,
             json_out: bool) -> None:
    """A customer buys a plan: the subscription's id and its landing-page token."""
    body = {"offerId": offer, "planId": plan, "quantity": quantity, "activated": activated, "csp": csp,
            "termUnit": term}
    bought = _sandbox(obj).post("/purchases", body)
    subscription = bought["subscription"]
    result = {"subscriptionId": subscription["id"], "token": bought["token"],
              "status": subscription["saasSubscriptionStatus"], "offerId": subscription["offerId"],
              "planId": subscription["planId"], "quantity": subscription.get("quantity")}
    if json_out:
        emit_json(result)
    else:
        console().print(fields_table("Purchased", result))


@sandbox.command()
@click.argument("subscription_id")
@json_option
@click.pass_obj
def show(obj: Context, subscription_id: str, json_out: bool) -> None:
    """The marketplace's truth about a subscription."""
    subscription = _sandbox(obj).get(f"/subscriptions/{subscription_id}")
    if json_out:
        emit_json(subscription)
    else:
        console().print(fields_table(f"Marketplace: {subscription_id}", subscription))


@sandbox.command()
@click.argument("subscription_id")
@json_option
@click.pass_obj
def activate(obj: Context, subscription_id: str, json_out: bool) -> None:
    """Activate a pending purchase, as our landing page would (no webhook)."""
    subscription = _sandbox(obj).post(f"/subscriptions/{subscription_id}/activate")
    if json_out:
        emit_json(subscription)
    else:
        click.echo(f"{subscription_id}: {subscription['saasSubscriptionStatus']}")


@sandbox.command()
@click.argument("operation_id")
@click.option("--times", type=click.IntRange(1, 100), default=1, show_default=True, help="Deliveries in a row.")
@json_option
@click.pass_obj
def redeliver(obj: Context, operation_id: str, times: int, json_out: bool) -> None:
    """Deliver an operation's webhook again (the same payload, as Microsoft's retries do)."""
    client = _sandbox(obj)
    result = client.post(f"/operations/{operation_id}/redeliver", {"times": times})
    record = client.get(f"/operations/{operation_id}")
    out = {"operationId": operation_id, "webhookStatuses": result["statuses"],
           "webhookAnswers": result.get("answers", []), "status": record["status"]}
    _print(out, json_out)


@sandbox.command()
@click.option("--status", type=click.IntRange(400, 599), help="The HTTP status the API answers (403 is permanent "
              "for the worker, 503 transient).")
@click.option("--path", "path", metavar="TEXT", help="Only calls whose path contains TEXT (a subscription id, say).")
@click.option("--method", type=click.Choice(["GET", "POST", "PATCH", "PUT", "DELETE"]), help="Only this method.")
@click.option("--times", type=click.IntRange(1, 10_000), default=1, show_default=True, help="Calls it answers.")
@click.option("--clear", is_flag=True, help="Remove every fault instead: the API answers normally again.")
@json_option
@click.pass_obj
def fault(obj: Context, status: int | None, path: str | None, method: str | None, times: int, clear: bool,
          json_out: bool) -> None:
    """Make the Fulfillment API fail the next matching calls (a bad day at the marketplace), or --clear.

    To see a delivery dead-lettered and replayed: `fault --status 403 --path SUB --method GET
    --times 50`, then `suspend SUB` (the worker cannot verify it: `lifecycle dlq list` shows
    it), then `fault --clear` and `lifecycle dlq replay OPERATION_ID`.
    """
    client = _sandbox(obj)
    if clear:
        client.delete("/faults")
        result: dict[str, Any] = {"cleared": True}
        text = "faults cleared: the API answers normally"
    elif status is None:
        raise click.UsageError("give --status (or --clear)")
    else:
        client.post("/faults", {"status": status, "path": path, "method": method, "times": times})
        result = {"status": status, "path": path, "method": method, "times": times}
        text = (f"the next {times} {method or 'API'} call(s){f' on paths containing {path}' if path else ''} "
                f"answer {status}")
    if json_out:
        emit_json(result)
    else:
        click.echo(text)


@sandbox.command("change-plan")
@click.argument("subscription_id")
@click.argument("plan")
@force_option
@no_deliver_option
@json_option
@click.pass_obj
def change_plan(obj: Context, subscription_id: str, plan: str, force: bool, no_deliver: bool, json_out: bool) -> None:
    """Change the plan: pending until our ack, our 4xx, or the auto-accept."""
    _act(obj, subscription_id, "change-plan", {"planId": plan, "force": force}, no_deliver, json_out)


@sandbox.command("change-quantity")
@click.argument("subscription_id")
@click.argument("quantity", type=int)
@force_option
@no_deliver_option
@json_option
@click.pass_obj
def change_quantity(obj: Context, subscription_id: str, quantity: int, force: bool, no_deliver: bool,
                    json_out: bool) -> None:
    """Change the seats: pending until our ack, our 4xx, or the auto-accept."""
    _act(obj, subscription_id, "change-quantity", {"quantity": quantity, "force": force}, no_deliver, json_out)


def _simple(action: str, help_text: str) -> None:
    @sandbox.command(action, help=help_text)
    @click.argument("subscription_id")
    @no_deliver_option
    @json_option
    @click.pass_obj
    def command(obj: Context, subscription_id: str, no_deliver: bool, json_out: bool) -> None:
        _act(obj, subscription_id, action, {}, no_deliver, json_out)


_simple("suspend", "Payment failed: Suspended at once (notify-only).")
_simple("reinstate", "Payment fixed: Subscribed once acknowledged or auto-accepted.")
_simple("renew", "The term ends: the next one starts at once (notify-only).")
_simple("unsubscribe", "Cancelled: Unsubscribed at once, for good (notify-only).")


def _act(obj: Context, subscription_id: str, action: str, body: dict[str, Any], no_deliver: bool,
         json_out: bool) -> None:
    client = _sandbox(obj)
    operation = client.post(f"/subscriptions/{subscription_id}/{action}", {**body, "deliver": not no_deliver})
    _print(_settled(client, operation, delivered=not no_deliver), json_out)


def _settled(client: SandboxControl, operation: dict[str, Any], *, delivered: bool) -> dict[str, Any]:
    """The operation once final and (if delivered) answered by our webhook, or as it is after the wait."""

    def done(record: dict[str, Any]) -> bool:
        answered = any(d["status"] is not None and d["status"] < 500 for d in record["deliveries"])
        return record["status"] not in PENDING and (answered or not delivered)

    record = wait_for(lambda: client.get(f"/operations/{operation['id']}"), done, timeout=WAIT_SECONDS)
    statuses = [d["status"] for d in record["deliveries"]]
    return {"operationId": record["operation_id"], "subscriptionId": record["subscription_id"],
            "action": record["action"], "webhookStatus": statuses[-1] if statuses else None,
            "status": record["status"], "decidedBy": record["decided_by"], "final": done(record)}


def _print(result: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(result)
        return
    console().print(fields_table(f"{result.get('action', 'Operation')} {result['operationId']}", result))
    if result.get("final") is False:
        click.echo(f"still {result['status']} after {WAIT_SECONDS:g} s: see `lifecycle sandbox show`", err=True)


def _sandbox(obj: Context) -> SandboxControl:
    return SandboxControl(stack(obj.state_dir))
