"""One worker process, and nothing else: our HTTP server and/or processing loops.

The soak keeps the marketplace's truth (the sandbox) and the tables (Azurite) in its
own process, and runs the worker here, in a process it can SIGKILL at any instant and
start again. Settings come from the environment like the real worker's; what only the
soak needs (port, loops, the queue's lock and duplicate window) comes as arguments.

    python -m soak.worker --port 7100 --loops 2 --ready FILE        # webhook + loops
    python -m soak.worker --no-serve --loops 2 --ready FILE         # loops only

Two of them on the same queue file and tables are two concurrent processors.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from datetime import timedelta
from pathlib import Path

from lifecycle.bootstrap import build
from lifecycle.local.queue import LocalQueue
from lifecycle.local.runner import Runner, processing
from lifecycle.local.server import LocalServer
from lifecycle.local.stack import worker_routes
from lifecycle.logs import configure, get_logger
from lifecycle.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak.worker")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serve", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--loops", type=int, default=2)
    parser.add_argument("--lock-seconds", type=float, default=5.0)
    parser.add_argument("--dedup-seconds", type=float, default=2.0)
    parser.add_argument("--ready", type=Path, required=True, help="written with our pid once we take work")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    configure(settings.log_level, json=True)
    log = get_logger("soak.worker")
    queue = LocalQueue(Path(settings.local_queue_path), lock_seconds=args.lock_seconds,
                       duplicate_window=timedelta(seconds=args.dedup_seconds))
    worker = build(settings, queue=queue)
    server = LocalServer(worker_routes(worker), port=args.port).start() if args.serve else None
    runner = Runner(queue, processing(worker.processing, queue, worker.clock), loops=args.loops).start()
    args.ready.write_text(str(os.getpid()))
    log.info("soak.worker_ready", port=server.port if server else None, loops=args.loops)

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    if server is not None:
        server.stop()
    finished = runner.stop()
    log.info("soak.worker_stopped", finished=finished)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
