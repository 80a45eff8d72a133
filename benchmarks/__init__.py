"""Speed and memory checks, each reported as a ratio against a baseline measured in the same run.

Run all: ``make bench`` (or ``.venv/bin/python -m benchmarks [--quick] [--only NAME] [--json F]``).
Each ``bench_*.py`` module has ``run(quick) -> list[row]`` with rows
``{"name", "value", "unit", "baseline", "ratio"[, "target"]}``.
"""
