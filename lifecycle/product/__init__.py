"""Telling the publisher's product: events, their signatures, the outbox, the veto.

    noop        NoopProduct: the default when no PRODUCT_EVENTS_URL is set
    events      the versioned JSON event and its stable id
    signing     HMAC-SHA256 over "<timestamp>.<body>", and its verification
    backlog     what a dispatcher sees of an outbox: listed subscriptions, their pending events
    outbox      TableOutbox: the Product port as one table write per event, and the listing
    outbox_rows the event rows' encoding and the SDK's errors mapped
    sender      HttpEventSender: one signed POST
    dispatcher  drains the outbox in order per subscription, with backoff
    immediate   ImmediateDispatch: Azure's try of a subscription's events right after a write
    veto        HttpVeto: the product's answer on a plan or quantity change, within a time budget
"""

from lifecycle.product.noop import NoopProduct

__all__ = ["NoopProduct"]
