"""Where log lines go: stderr locally, stdlib logging (which the Functions host ships) in Azure."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from lifecycle.logs import configure, get_logger
from lifecycle.settings import LogSink


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("lifecycle")
    level = logger.level
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
    structlog.reset_defaults()


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
