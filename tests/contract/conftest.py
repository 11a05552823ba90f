"""The store fixture both store contract modules share: the fake, and the table store on Azurite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.data.tables import TableServiceClient

from lifecycle.ports import SubscriptionStore
from lifecycle.store.table import TableSubscriptionStore
from tests.fakes import FakeSubscriptionStore

# One process's clock on either side (Azurite's, or the fake's): the skew margin is not needed,
# and without it a test need not wait for a row to become old enough to remove.
NO_MARGIN = timedelta(0)


@pytest.fixture(params=["fake", pytest.param("azurite", marks=pytest.mark.azurite)])
def store(request: pytest.FixtureRequest, table_prefix: str) -> Iterator[SubscriptionStore]:
    if request.param == "fake":
        yield FakeSubscriptionStore(index_margin=NO_MARGIN)
        return
    conn = request.getfixturevalue("azurite_connection_string")
    # A small page size so the streaming tests cross page boundaries.
    with TableSubscriptionStore.from_connection_string(conn, table_prefix, page_size=7,
                                                       index_margin=NO_MARGIN) as real:
        yield real
    with TableServiceClient.from_connection_string(conn) as service:
        service.delete_table(real.table_name)
        service.delete_table(real.index_table_name)
