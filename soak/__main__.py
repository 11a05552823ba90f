"""`python -m soak --subscriptions 1000 --events 20000 --seed 7`: exits 1 on any violation."""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import fields
from pathlib import Path

from soak.config import FaultRates, SoakConfig
from soak.report import RESULTS, show, write
from soak.run import run

DEFAULT = SoakConfig()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=DEFAULT.subscriptions)
    parser.add_argument("--events", type=int, default=DEFAULT.events)
    parser.add_argument("--seed", type=int, default=DEFAULT.seed)
    parser.add_argument("--kills", type=int, default=None, help="default: one per 1,000 events, at least 3")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    for rate in fields(FaultRates):
        parser.add_argument(f"--{rate.name.replace('_', '-')}-rate", dest=rate.name, type=float, default=rate.default)
    args = parser.parse_args(argv)
    rates = FaultRates(**{rate.name: getattr(args, rate.name) for rate in fields(FaultRates)})
    config = SoakConfig(subscriptions=args.subscriptions, events=args.events, seed=args.seed, kills=args.kills,
                        rates=rates)
    work = args.out.parent / "run"  # the queue file and every worker's log, kept for a post-mortem
    shutil.rmtree(work, ignore_errors=True)
    result = run(config, work, progress=lambda line: print(line, file=sys.stderr, flush=True))
    path = write(result, args.out)
    show(result, path)
    return 1 if result.violations else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
