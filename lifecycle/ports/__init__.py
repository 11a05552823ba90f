"""Ports: one small Protocol per outside system, a module each. Adapters are named for their technology.

Fakes for unit tests live in the `tests/fakes` package; contract tests hold each fake to the
same assertions as its real adapter. Everything is importable from `lifecycle.ports` itself.
"""

from lifecycle.ports.authenticator import Authenticator
from lifecycle.ports.clock import Clock
from lifecycle.ports.marketplace import MarketplaceApi
from lifecycle.ports.product import Product, ProductAnswer, ProductVeto
from lifecycle.ports.queue import DeadLetter, DeadLetters, Queue, QueueMessage, operation_id_of, resend_id
from lifecycle.ports.store import Hit, Indexed, Lookup, Reindexed, SubscriptionStore

__all__ = [
    "Authenticator",
    "Clock",
    "DeadLetter",
    "DeadLetters",
    "Hit",
    "Indexed",
    "Lookup",
    "MarketplaceApi",
    "Product",
    "ProductAnswer",
    "ProductVeto",
    "Queue",
    "QueueMessage",
    "Reindexed",
    "SubscriptionStore",
    "operation_id_of",
    "resend_id",
]
