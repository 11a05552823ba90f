"""Run benchmarks: `python -m bench` runs them all, `python -m bench decide processing` some."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["decide", "processing", "ingress", "reconcile", "query"]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        importlib.import_module(f"bench.{name}").run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
