"""In-memory fakes of the ports, each held to its real adapter by the contract tests."""

from tests.fakes.queue import FakeQueue
from tests.fakes.store import FakeSubscriptionStore

__all__ = ["FakeQueue", "FakeSubscriptionStore"]
