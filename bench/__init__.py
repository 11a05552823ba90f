"""Benchmarks: `make bench` (or `python -m bench NAME...`). Figures go to bench/results/*.json."""
