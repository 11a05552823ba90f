"""The local stack behind `make run`: every part started, wired and stopped in order.

    start  Azurite (tables kept under the state dir) -> the sandbox (identity and truth
           from the state dir, auto-accept 10 s) -> the worker (`build` on Azurite, the
           sandbox and the LocalQueue) -> our HTTP server, and the sandbox told to deliver
           to it -> the processing loops -> the reconcile timer (RECONCILE_SCHEDULE) ->
           stack.json (from now on the CLI finds us)
    stop   the reverse: stack.json goes first, then the server (no new deliveries), the
           timer (a run in progress ends at its next page), the loops (each finishes the
           message in hand), the sandbox (its truth saved), Azurite

A second start on the same state dir reuses Azurite's data, the queue file and the
sandbox's identity and truth (`lifecycle.local.state`); a start while another stack runs
on it is refused.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from lifecycle.bootstrap import WEBHOOK_STORAGE, Worker, build
from lifecycle.bootstrap import dispatcher as dispatcher_of
from lifecycle.entrypoints import activation, http, ops
from lifecycle.local import state
from lifecycle.local.azurite import Azurite, find_executable
from lifecycle.local.queue import LocalQueue
from lifecycle.local.runner import Runner, processing
from lifecycle.local.schedule import Schedule
from lifecycle.local.server import LocalServer, Route
from lifecycle.local.timer import ReconcileTimer
from lifecycle.logs import get_logger
from lifecycle.product.dispatcher import DispatcherThread
from lifecycle.sandbox import Sandbox
from lifecycle.settings import Settings
from lifecycle.store.table import TableSubscriptionStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AUTOSAVE_SECONDS = 5.0  # how much of the sandbox's truth a crash (kill -9) can lose


class AlreadyRunning(RuntimeError):
    """Another stack serves this state directory; the message says where."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StackOptions:
    state_dir: Path
    port: int = 7071  # the Functions host's port
    azurite_port: int = 0  # 0: a free port (Azurite's usual 10002 may be taken by a standalone one)
    sandbox_port: int = 0
    loops: int = 4
    auto_accept_seconds: float = 10.0


def worker_routes(worker: Worker, *checks: http.Check, key_kept: str = "") -> list[Route]:
    """The Functions app's HTTP routes (see `functions/`) on the same shared handlers;
    `key_kept` says where the ops API's key is, for its 401 answers."""
    return [
        Route("POST", "marketplace/webhook", lambda request: http.webhook(request, worker.webhook)),
        Route("GET", "health", lambda request: http.health(request, *checks)),
        # No key locally (loopback only); in Azure the route needs the function key.
        Route("POST", "marketplace/activate", lambda request: activation.activate(request, worker.activation)),
        *ops_routes(worker, key_kept=key_kept),
    ]


def ops_routes(worker: Worker, *, key_kept: str = "") -> list[Route]:
    """The read-only ops API behind OPS_API_KEY, as Azure puts it behind the function key."""
    key = worker.settings.ops_api_key
    handlers = {"subscriptions": ops.subscriptions, "subscriptions/{id}": ops.subscription,
                "subscriptions/{id}/events": ops.events, "entitlements": ops.entitlements}
    return [Route("GET", route, ops.keyed(key, functools.partial(handler, service=lambda: worker.query),
                                          kept=key_kept))
            for route, handler in handlers.items()]


class LocalStack:
    """Starts and stops the parts; `start()` returns once the webhook answers."""

    def __init__(self, options: StackOptions, settings: Settings | None = None) -> None:
        self.options = options
        self._base = settings or Settings()
        self._log = get_logger("lifecycle.local.stack")
        self._azurite: Azurite | None = None
        self._sandbox: Sandbox | None = None
        self._store: TableSubscriptionStore | None = None
        self._webhook_store: TableSubscriptionStore | None = None
        self._server: LocalServer | None = None
        self._runner: Runner | None = None
        self._timer: ReconcileTimer | None = None
        self._dispatcher: DispatcherThread | None = None
        self._saving = threading.Event()
        self._saver: threading.Thread | None = None
        self.info: state.StackInfo | None = None

    def start(self) -> state.StackInfo:
        started = time.perf_counter()
        directory = self.options.state_dir
        directory.mkdir(parents=True, exist_ok=True)
        other = state.running(directory)
        if other is not None:
            raise AlreadyRunning(f"a stack is already running on {directory} (pid {other.pid}, {other.url})")
        _end_orphan(state.read_info(directory), directory / "azurite")
        try:
            self.info = self._start(directory)
        except BaseException:
            self.stop()
            raise
        # Not `key=` or `key_file=`: the log redactor hides every field whose name says "key".
        self._log.info("ops_api.ready", url=f"{self.info.url}/api/subscriptions", kept_in=self._key_kept(directory))
        self._log.info("stack.ready", seconds=round(time.perf_counter() - started, 2), url=self.info.url,
                       sandbox=self.info.sandbox_control_url, state_dir=str(directory))
        return self.info

    def _start(self, directory: Path) -> state.StackInfo:
        options = self.options
        schedule = Schedule.parse(self._base.reconcile_schedule)  # a bad schedule stops the start before anything runs
        self._azurite = Azurite(find_executable(PROJECT_ROOT), port=options.azurite_port,
                                location=directory / "azurite", log_path=directory / "azurite.log").start()
        who = state.identity(directory)
        sandbox = Sandbox(tenant_id=who.tenant_id, client_id=who.client_id, client_secret=who.client_secret,
                          auto_accept_seconds=options.auto_accept_seconds, api_port=options.sandbox_port)
        self._sandbox = sandbox
        restored = state.restore_marketplace(sandbox.marketplace, directory)
        sandbox.start()
        env = sandbox.settings_env()
        settings = replace(
            self._base,
            tenant_id=who.tenant_id, client_id=who.client_id, client_secret=who.client_secret,
            marketplace_api_url=env["MARKETPLACE_API_URL"], authority_host=env["MARKETPLACE_AUTHORITY_HOST"],
            authority_ca_bundle=env["MARKETPLACE_AUTHORITY_CA_BUNDLE"],
            openid_metadata_url=env["WEBHOOK_OPENID_METADATA_URL"],
            storage_connection_string=self._azurite.connection_string, storage_table_endpoint="",
            local_queue_path=str(directory / "queue.sqlite"),
            ops_api_key=self._base.ops_api_key or state.ops_key(directory),
        )
        self._store = TableSubscriptionStore.from_connection_string(settings.storage_connection_string,
                                                                    settings.table_prefix)
        queue = LocalQueue(Path(settings.local_queue_path))
        self._webhook_store = TableSubscriptionStore.from_connection_string(
            settings.storage_connection_string, settings.table_prefix, **WEBHOOK_STORAGE)
        worker = build(settings, store=self._store, webhook_store=self._webhook_store, queue=queue,
                       on_product_event=self._nudge_dispatcher)
        dispatcher = dispatcher_of(worker)  # None without PRODUCT_EVENTS_URL
        if dispatcher is not None:
            self._dispatcher = DispatcherThread(dispatcher).start()

        def local_queue() -> None:
            queue.depth()  # a cheap local read: the queue file is there and readable

        routes = worker_routes(worker, local_queue, key_kept=f"the key is in {self._key_kept(directory)}")
        self._server = LocalServer(routes, port=options.port).start()
        sandbox.webhook_url = f"{self._server.url}/api/marketplace/webhook"
        self._runner = Runner(queue, processing(worker.processing, queue, worker.clock), loops=options.loops).start()
        self._timer = ReconcileTimer(schedule, lambda progress: worker.reconcile.run(progress=progress)).start()
        self._saver = threading.Thread(target=self._autosave, name="sandbox-autosave", daemon=True)
        self._saver.start()
        info = state.StackInfo(
            pid=os.getpid(), url=self._server.url, sandbox_api_url=sandbox.api_url,
            sandbox_control_url=sandbox.control_url, storage_connection_string=settings.storage_connection_string,
            table_prefix=settings.table_prefix, azurite_pid=self._azurite.pid,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            settings_env=settings.to_env(),
        )
        state.write_info(directory, info)
        self._log.info("sandbox.ready", restored=restored, subscriptions=len(sandbox.marketplace.subscription_ids()),
                       api=sandbox.api_url, tenant_id=who.tenant_id, client_id=who.client_id)
        return info

    def _key_kept(self, directory: Path) -> str:
        """Where the ops API's key is, never the key: OPS_API_KEY, or the file the stack made."""
        return "OPS_API_KEY" if self._base.ops_api_key else str(directory / state.OPS_KEY_FILE)

    def stop(self) -> None:
        """Stop everything that started, in order; safe to call twice or after a failed start."""
        directory, began = self.options.state_dir, time.perf_counter()
        if self.info is not None:
            self._log.info("stack.stopping")
            state.remove_info(directory, self.info.pid)
        if self._server is not None:
            self._server.stop()
        if self._dispatcher is not None:
            self._dispatcher.stop()  # what it did not send stays in the outbox for the next start
        if self._timer is not None and not self._timer.stop():
            self._log.warning("stack.reconcile_still_busy", hint="its lease expires on its own")
        if self._runner is not None and not self._runner.stop():
            self._log.warning("stack.loop_still_busy", hint="its message is redelivered on the next start")
        self._saving.set()
        if self._saver is not None:
            self._saver.join(timeout=5)
        if self._sandbox is not None:
            with contextlib.suppress(OSError):
                state.save_marketplace(self._sandbox.marketplace, directory)
            self._sandbox.stop()
        for store in (self._store, self._webhook_store):
            if store is not None:
                store.close()
        if self._azurite is not None:
            self._azurite.stop()
            self._log.info("stack.stopped", seconds=round(time.perf_counter() - began, 2))
        self._dispatcher = None
        self._server = self._runner = self._timer = self._sandbox = self._store = self._azurite = self._saver = None
        self._webhook_store = None
        self.info = None

    def _nudge_dispatcher(self, subscription_id: str) -> None:
        if self._dispatcher is not None:
            self._dispatcher.nudge(subscription_id)

    def _autosave(self) -> None:
        while not self._saving.wait(AUTOSAVE_SECONDS):
            if self._sandbox is not None:
                try:
                    state.save_marketplace(self._sandbox.marketplace, self.options.state_dir)
                except OSError as error:
                    self._log.warning("sandbox.save_failed", reason=str(error))

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _end_orphan(last: state.StackInfo | None, data: Path) -> None:
    """A stack killed hard leaves its Azurite running on our data dir: two would corrupt it."""
    if last is None or last.azurite_pid is None or not state.alive(last.azurite_pid):
        return
    with contextlib.suppress(OSError):
        # Only that Azurite: the pid may have been reused since, by anything.
        command = Path(f"/proc/{last.azurite_pid}/cmdline").read_bytes().split(b"\0")
        if any(b"azurite" in part for part in command) and str(data).encode() in command:
            os.kill(last.azurite_pid, signal.SIGINT)  # SIGINT: Azurite saves its tables first
            deadline = time.monotonic() + 10
            while state.alive(last.azurite_pid) and time.monotonic() < deadline:
                time.sleep(0.05)


