"""Telling the publisher's product: events, their signatures, the outbox, the veto.

    noop        NoopProduct: the default when no PRODUCT_EVENTS_URL is set
    events      the versioned JSON event and its stable id
    signing     HMAC-SHA256 over "<timestamp>.<body>", and its verification
    outbox      TableOutbox: the Product port as one table write per event
    sender      HttpEventSender: one signed POST
    dispatcher  drains the outbox in order per subscription, with backoff
    veto        HttpVeto: the product's answer on a plan or quantity change, within a time budget
"""

from lifecycle.product.noop import NoopProduct

__all__ = ["NoopProduct"]
