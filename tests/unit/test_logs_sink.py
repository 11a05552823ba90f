"""Where log lines go: stderr locally, stdlib logging (which the Functions host ships) in Azure."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from lifecycle.logs import LIBRARIES, configure, get_logger
from lifecycle.settings import LogSink


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def levels_kept() -> Iterator[None]:
    """`configure` sets levels on process-wide loggers: each test gets them back as they were."""
    names = ("lifecycle", *LIBRARIES)
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("lifecycle")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_under_the_host_a_line_is_a_json_record_of_the_lifecycle_logger_at_its_level(records: Records) -> None:
    configure("INFO", sink=LogSink.LOGGING)

    get_logger("lifecycle.processor").warning("message.rescheduled", subscription_id="sub-1", delay_seconds=30)

    [record] = records.records
    assert record.name == "lifecycle.processor"
    assert record.levelno == logging.WARNING
    line = json.loads(record.getMessage())
    assert (line["event"], line["subscription_id"], line["level"]) == ("message.rescheduled", "sub-1", "warning")


def test_under_the_host_secrets_are_still_redacted(records: Records) -> None:
    configure("INFO", sink=LogSink.LOGGING)

    get_logger("lifecycle.http").info("token.fetched", access_token="eyJ.secret.sig")

    assert json.loads(records.records[0].getMessage())["access_token"] == "[redacted]"


def test_under_the_host_other_loggers_are_filed_under_lifecycle_and_the_level_applies(records: Records) -> None:
    configure("WARNING", sink=LogSink.LOGGING)

    get_logger("sandbox").info("quiet")
    get_logger("sandbox").error("loud")

    [record] = records.records
    assert (record.name, json.loads(record.getMessage())["event"]) == ("lifecycle.sandbox", "loud")


def test_locally_lines_go_to_the_stream_and_not_through_stdlib_logging(records: Records) -> None:
    stream = io.StringIO()
    configure("INFO", stream=stream)

    get_logger("lifecycle.processor").info("processing.done", subscription_id="sub-2")

    assert records.records == []
    assert json.loads(stream.getvalue())["subscription_id"] == "sub-2"  # JSON: a StringIO is no terminal


@pytest.fixture
def host_root() -> Iterator[Records]:
    """The root logger as the Functions worker leaves it: INFO, with a handler that ships every record."""
    handler, root = Records(), logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def _read_from_a_closed_port() -> None:
    """One real Table Storage request (its pipeline logs it at INFO before sending); nothing listens."""
    from azure.core.exceptions import ServiceRequestError
    from azure.data.tables import TableClient

    from lifecycle.local.azurite import connection_string, free_port

    client = TableClient.from_connection_string(connection_string(free_port()), "nothing", retry_total=0)
    with client, pytest.raises(ServiceRequestError):
        client.get_entity("pk", "rk")


def _library_records(handler: Records, level: int) -> list[logging.LogRecord]:
    return [r for r in handler.records if r.name.split(".")[0] in LIBRARIES and r.levelno == level]


def test_under_the_host_the_sdks_request_records_are_held_back(host_root: Records) -> None:
    _read_from_a_closed_port()
    assert _library_records(host_root, logging.INFO), "the SDK no longer logs requests at INFO: revisit LIBRARIES"
    host_root.records.clear()

    configure("INFO", sink=LogSink.LOGGING)
    _read_from_a_closed_port()
    get_logger("lifecycle.store").info("still.ours")

    assert _library_records(host_root, logging.INFO) == []
    assert [json.loads(r.getMessage())["event"] for r in host_root.records if r.name.startswith("lifecycle")] == [
        "still.ours"]


def test_under_the_host_library_warnings_pass_and_the_level_is_configurable(host_root: Records) -> None:
    configure("INFO", sink=LogSink.LOGGING)
    logging.getLogger("azure.servicebus").warning("link detached")
    logging.getLogger("httpx").info("HTTP Request: GET")
    assert [(r.name, r.levelno) for r in host_root.records] == [("azure.servicebus", logging.WARNING)]

    host_root.records.clear()
    configure("INFO", sink=LogSink.LOGGING, library_level="INFO")  # LIBRARY_LOG_LEVEL=INFO, to see every request
    _read_from_a_closed_port()
    assert _library_records(host_root, logging.INFO)


def test_locally_the_library_loggers_are_left_as_they_are() -> None:
    before = {name: logging.getLogger(name).level for name in LIBRARIES}
    configure("DEBUG", stream=io.StringIO(), library_level="ERROR")
    assert {name: logging.getLogger(name).level for name in LIBRARIES} == before
