"""What the local stack keeps in its state directory, and how another process finds it.

    <state dir>/            `.local/` in the project unless told otherwise
      stack.json            while the stack runs: its pid, URLs and storage (discovery for the CLI)
      sandbox.json          the sandbox's tenant, client id and secret: stable across restarts (0600)
      ops-api-key           the local ops API's key, made once unless OPS_API_KEY is set (0600)
      marketplace.json      the sandbox's truth: subscriptions, landing-page tokens, operations
      queue.sqlite          the durable local queue
      azurite/, azurite.log Azurite's tables and its output

The sandbox keeps its truth in memory. Our tables survive a restart in Azurite, so the
truth must too, or the two would disagree after a second `make run`: it is written
here on stop (and every few seconds while running, against a crash) and read on start.
The sandbox has no export of its own, so this module reads and restores its internals;
a deadline that passed while the stack was down is settled on the first call, as if the
marketplace had kept running (it would have auto-accepted).
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI reads stack.json often: it should not load the whole sandbox to do it
    from lifecycle.sandbox.marketplace import Marketplace
    from lifecycle.sandbox.records import Entry

STACK_FILE = "stack.json"
IDENTITY_FILE = "sandbox.json"
OPS_KEY_FILE = "ops-api-key"
MARKETPLACE_FILE = "marketplace.json"
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class StackInfo:
    """Where a running stack answers; the Azurite key in it is the public development key."""

    pid: int
    url: str  # our server: /api/marketplace/webhook, /api/health
    sandbox_api_url: str
    sandbox_control_url: str
    storage_connection_string: str
    table_prefix: str
    azurite_pid: int | None = None
    started_at: str = ""
    # The worker's settings as environment variables, without the client secret (that
    # stays in sandbox.json): how the CLI builds the same worker the stack runs.
    settings_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Identity:
    tenant_id: str
    client_id: str
    client_secret: str


def default_state_dir() -> Path:
    """`.local/` in the project when running from a checkout, else in the current directory."""
    root = Path(__file__).resolve().parents[2]
    return (root if (root / "pyproject.toml").is_file() else Path.cwd()) / ".local"


def write_info(state_dir: Path, info: StackInfo) -> None:
    _write(state_dir / STACK_FILE, asdict(info))


def read_info(state_dir: Path) -> StackInfo | None:
    """The last stack's record, whether or not it still runs; None if there is none."""
    try:
        return StackInfo(**json.loads((state_dir / STACK_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running(state_dir: Path) -> StackInfo | None:
    """The stack serving this state directory, if its process is alive."""
    info = read_info(state_dir)
    return info if info is not None and alive(info.pid) else None


def remove_info(state_dir: Path, pid: int) -> None:
    info = read_info(state_dir)
    if info is not None and info.pid == pid:  # never remove another live stack's record
        (state_dir / STACK_FILE).unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (killed, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists, and is not ours to signal
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal test is all there is


def identity(state_dir: Path) -> Identity:
    """The sandbox's tenant and app, made once: a second start must accept the same secret."""
    path = state_dir / IDENTITY_FILE
    try:
        return Identity(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        made = Identity(str(uuid.uuid4()), str(uuid.uuid4()), secrets.token_urlsafe(30))
        _write(path, asdict(made))
        return made


def ops_key(state_dir: Path) -> str:
    """The local ops API's key, made once: scripts keep working across restarts."""
    path = state_dir / OPS_KEY_FILE
    try:
        key = path.read_text().strip()
    except OSError:
        key = ""
    if not key:
        key = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(key + "\n")
    return key


def save_marketplace(marketplace: Marketplace, state_dir: Path) -> None:
    with marketplace._lock:
        book = marketplace._book
        data = {
            "version": SNAPSHOT_VERSION,
            "subscriptions": list(marketplace._subscriptions.values()),
            "tokens": {token: [sid, at.isoformat()] for token, (sid, at) in marketplace._tokens.items()},
            "activations": {sid: at.isoformat() for sid, at in marketplace._activations.items()},
            "operations": [_entry_json(entry) for entry in book._entries.values()],
        }
        _write(state_dir / MARKETPLACE_FILE, data)  # under the lock: a consistent picture


def restore_marketplace(marketplace: Marketplace, state_dir: Path) -> bool:
    """Load the saved truth into a fresh marketplace; False if there was none."""
    try:
        data = json.loads((state_dir / MARKETPLACE_FILE).read_text())
    except FileNotFoundError:
        return False
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"{state_dir / MARKETPLACE_FILE}: unknown snapshot version {data.get('version')!r}")
    entries = [_entry(item) for item in data["operations"]]
    with marketplace._lock:
        marketplace._subscriptions = {item["id"]: item for item in data["subscriptions"]}
        marketplace._tokens = {t: (sid, datetime.fromisoformat(at)) for t, (sid, at) in data["tokens"].items()}
        marketplace._activations = {sid: datetime.fromisoformat(at) for sid, at in data["activations"].items()}
        marketplace._book._entries = {entry.id: entry for entry in entries}
        marketplace._book._pending = {entry.id for entry in entries if entry.pending}
    return True


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "operation": entry.operation,
        "payload": entry.payload,
        "source": entry.source,
        "deadline": _iso(entry.deadline),
        "patches": [[p.status, p.at.isoformat(), p.answer] for p in entry.patches],
        "deliveries": [[d.status, d.elapsed, d.at.isoformat(), d.error] for d in entry.deliveries],
        "decidedBy": entry.decided_by.value if entry.decided_by else None,
        "decidedAt": _iso(entry.decided_at),
        "protocolErrors": entry.protocol_errors,
    }


def _entry(item: dict[str, Any]) -> Entry:
    from lifecycle.sandbox.records import Decider, DeliveryAttempt, Entry, PatchReceived

    return Entry(
        operation=item["operation"],
        payload=item["payload"],
        source=item["source"],
        deadline=_time(item["deadline"]),
        in_flight=0,  # nothing is in flight across a restart
        patches=[PatchReceived(s, datetime.fromisoformat(at), answer) for s, at, answer in item["patches"]],
        deliveries=[DeliveryAttempt(s, e, datetime.fromisoformat(at), err) for s, e, at, err in item["deliveries"]],
        decided_by=Decider(item["decidedBy"]) if item["decidedBy"] else None,
        decided_at=_time(item["decidedAt"]),
        protocol_errors=list(item["protocolErrors"]),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _write(path: Path, data: object) -> None:
    """Atomically, private to this user: a reader never sees half a file, nor another user a secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(data, file, indent=1)
    os.replace(partial, path)
