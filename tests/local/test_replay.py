"""Replaying dead letters through the local queue and the real processing path (fakes behind the ports)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.clock import SystemClock
from lifecycle.domain.records import Commit
from lifecycle.local.queue import LocalQueue
from lifecycle.local.runner import Runner, processing
from lifecycle.parsing import parse_subscription, parse_webhook
from lifecycle.ports import QueueMessage
from lifecycle.product import NoopProduct
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.processing import ProcessingService
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.store import FakeSubscriptionStore


class World:
    def __init__(self, path: Path) -> None:
        self.marketplace = Marketplace(auto_accept_seconds=None)
        self.store = FakeSubscriptionStore()
        self.service = ProcessingService(self.store, InProcessMarketplaceApi(self.marketplace), NoopProduct(),
                                         SystemClock())
        self.queue = LocalQueue(path)
        self.runner = Runner(self.queue, processing(self.service, self.queue, SystemClock()))

    def dead_lettered_suspension(self) -> tuple[str, str, str]:
        """(subscription id, operation id, body) of a Suspend the queue gave up on."""
        sid = str(self.marketplace.purchase("contoso-seats", "team", 5, activated=True)[0]["id"])
        self.store.commit(Commit(subscription=parse_subscription(self.marketplace.get(sid)), expected=None))  # known
        operation = self.marketplace.suspend(sid, deliver=False)
        body = json.dumps(self.marketplace.webhook_payload(str(operation["id"])))
        self.queue.send(QueueMessage(session_id=sid, message_id=str(operation["id"]), body=body))
        received = self.queue.receive()
        assert received is not None
        self.queue.dead_letter(received.lock_token, "MaxDeliveryCountExceeded: 10 deliveries")
        return sid, str(operation["id"]), body


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "queue.sqlite")


def test_a_replayed_dead_letter_is_applied_once_as_a_replay(world: World) -> None:
    sid, op, _ = world.dead_lettered_suspension()

    assert world.queue.replay(op)
    assert world.runner.run_once()

    entries = [e for e in world.store.history(sid) if e.operation_id == op]
    assert [(e.outcome.value, e.source.value) for e in entries] == [("applied", "replay")]
    assert world.queue.depth() == 0


def test_replaying_what_was_applied_meanwhile_changes_nothing(world: World) -> None:
    sid, op, body = world.dead_lettered_suspension()
    world.service.process(parse_webhook(json.loads(body)))  # a later delivery of the same operation got through
    before, history = world.store.load(sid), world.store.history(sid)

    assert world.queue.replay(op)
    assert world.runner.run_once()

    assert (world.store.load(sid), world.store.history(sid)) == (before, history)
    assert world.queue.dead_letters() == []
    assert world.queue.depth() == 0
