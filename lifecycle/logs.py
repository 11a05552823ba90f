"""Structured logs: JSON lines in Azure, readable lines on a terminal.

Two sinks. Locally each line is printed to stderr. Under the Azure Functions host
(LOG_SINK=logging) each line goes, still as JSON, to the stdlib logger "lifecycle" (or a
child named like the structlog logger): the host captures stdlib logging, not stderr,
and ships it to Application Insights' traces table with the line's level.

Under the host the libraries' own loggers are held at LIBRARY_LOG_LEVEL (WARNING): the
Python worker sets the root logger to INFO and ships every record, and at INFO the Azure
SDK logs each request's URL and headers (several multi-line records per storage call) and
httpx each marketplace call, none of it JSON; they cost CPU on every request too.

Every line on an event's path carries subscription_id, operation_id, activity_id and
action (bound by the services). A last line of defence drops values under keys that
name secrets, and cuts long strings, so no token or whole payload reaches the logs.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from lifecycle.settings import LogSink

_SECRET_WORDS = ("token", "secret", "authorization", "password", "signature", "key", "payload", "body")
_SECRET_KEY = re.compile("|".join(_SECRET_WORDS), re.IGNORECASE)
_HARMLESS_SUFFIX = re.compile(r"(_id|_count|_bytes)$", re.IGNORECASE)
_ALLOWED = {"event", "level", "timestamp", "logger", "exc_info"}
MAX_VALUE_CHARS = 200
MAX_TRACEBACK_CHARS = 4000  # the formatted `exception`: its last frames and message are what matter


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop secret-looking keys and bound every string value, the formatted traceback included."""
    for name in list(event_dict):
        if name in _ALLOWED:
            continue
        if _SECRET_KEY.search(name) and not _HARMLESS_SUFFIX.search(name):
            event_dict[name] = "[redacted]"
            continue
        value = event_dict[name]
        if not isinstance(value, str):
            continue
        if name == "exception":
            if len(value) > MAX_TRACEBACK_CHARS:
                value = "…" + value[-MAX_TRACEBACK_CHARS:]
        elif len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS] + "…"
        event_dict[name] = value
    return event_dict


ROOT_LOGGER = "lifecycle"
LIBRARIES = ("azure", "httpx", "httpcore", "msal", "urllib3", "uamqp")  # loggers of what we call, not ours


def configure(level: str = "INFO", *, json: bool | None = None, stream: TextIO | None = None,
              sink: LogSink = LogSink.STDERR, library_level: str = "WARNING") -> None:
    """Configure structlog once per process; JSON unless writing to a terminal.

    `library_level` applies under the host (`LogSink.LOGGING`) only: locally nothing ships
    the libraries' records but Python's last-resort handler, which prints warnings anyway.
    """
    stream = stream or sys.stderr
    to_logging = sink is LogSink.LOGGING
    use_json = to_logging or ((not stream.isatty()) if json is None else json)
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    factory: Any = _stdlib_logger if to_logging else structlog.PrintLoggerFactory(stream)
    if to_logging:
        logging.getLogger(ROOT_LOGGER).setLevel(level.upper())  # the host's root level may be higher
        for library in LIBRARIES:
            logging.getLogger(library).setLevel(library_level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,  # after the traceback is text, so it is bounded too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def _stdlib_logger(name: str = ROOT_LOGGER, *_: Any) -> logging.Logger:
    # Under "lifecycle" whatever the structlog name, so one logger's level and handlers cover all.
    return logging.getLogger(name if name.split(".")[0] == ROOT_LOGGER else f"{ROOT_LOGGER}.{name}")


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
