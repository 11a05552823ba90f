"""What the worker's logs must never hold: an unhandled exception, a token, a secret, a payload.

Every line is one JSON object (structlog). Anything else is a violation: a traceback
printed by Python itself is an exception nobody handled. The one exception is the last
line of a log whose process was SIGKILLed, which the kill may cut short.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.")
CRASH_EVENTS = frozenset({"webhook.crashed", "http.crashed", "http.connection_failed"})
# A payload's own keys (camelCase, quoted, maybe escaped inside a logged string): a line
# quoting two of them carries (part of) a whole body. Our own log keys are snake_case.
PAYLOAD_KEY = re.compile(r'\\*"(activityId|subscriptionId|purchaseToken|saasSubscriptionStatus|beneficiary|offerId)'
                         r'\\*"\s*:')


@dataclass(slots=True)
class LogScan:
    lines: int = 0
    events: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


def scan(logs: Iterable[Path], *, cut_short: set[Path], secrets: Iterable[str]) -> LogScan:
    """Read every log; `secrets` are strings that must appear nowhere (client secret, e-mails)."""
    found = LogScan()
    hidden = [s for s in secrets if s]
    for path in logs:
        text = path.read_text(errors="replace")
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            found.lines += 1
            where = f"{path.name}:{number}"
            last_of_killed = path in cut_short and number == len(lines) and not text.endswith("\n")
            _check(line, where, last_of_killed, hidden, found)
    return found


def _check(line: str, where: str, last_of_killed: bool, secrets: list[str], found: LogScan) -> None:
    if JWT.search(line):
        found.violations.append(f"{where}: a bearer token in the log")
    if any(secret in line for secret in secrets):
        found.violations.append(f"{where}: a secret or personal data in the log")
    if len(set(PAYLOAD_KEY.findall(line))) >= 2:
        found.violations.append(f"{where}: a whole payload in the log")
    try:
        entry = json.loads(line)
    except ValueError:
        if not last_of_killed:
            found.violations.append(f"{where}: not a structured line (an unhandled exception?): {line[:120]}")
        return
    if not isinstance(entry, dict):
        found.violations.append(f"{where}: not a structured line: {line[:120]}")
        return
    event = str(entry.get("event", ""))
    found.events[event] += 1
    if event in CRASH_EVENTS or "exception" in entry:
        found.violations.append(f"{where}: unhandled exception: {event} {entry.get('error_type', '')}"
                                f" {str(entry.get('exception', ''))[-300:]}")
