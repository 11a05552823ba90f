"""The product dispatcher timer: send pending product events, each subscription's in order."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import azure.functions as func

from lifecycle import bootstrap
from lifecycle.logs import get_logger

if TYPE_CHECKING:
    from lifecycle.product.dispatcher import Dispatcher

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves its __init__ unannotated


# Every minute, the safety net: each event is first tried right after it is written (see
# bootstrap), and this pass sends what those tries left. The host runs a timer as a singleton
# across instances; a try may still meet it on one subscription, which keeps order (see the
# dispatcher). A failing event waits on its row (backoff, attempts, last error): nothing here
# raises for it.
@bp.timer_trigger(arg_name="timer", schedule="0 * * * * *", run_on_startup=False, use_monitor=True)
def product_dispatch(timer: func.TimerRequest) -> None:
    dispatcher = _dispatcher()
    if dispatcher is None:
        return  # no PRODUCT_EVENTS_URL: nothing is ever written
    report = dispatcher.dispatch()
    get_logger("lifecycle.product").info("product.dispatched", delivered=report.delivered, failed=report.failed,
                                         waiting=report.waiting, past_due=timer.past_due)


@functools.cache
def _dispatcher() -> Dispatcher | None:
    """One per process: its HTTP client keeps connections to the product open between ticks."""
    return bootstrap.dispatcher(bootstrap.worker())
