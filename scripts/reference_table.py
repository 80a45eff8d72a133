#!/usr/bin/env python3
"""Markdown table of the reference runs' test results (the table in docs/training.md).

Reads ``<ref>/<run>/eval_<model>[_median].json`` written by ``scripts/reference_runs.sh`` and
prints one row per run, model file and alignment, with the two baselines of the same
evaluation next to it.

    usage: python3 scripts/reference_table.py [REF_DIR]   (default out/ref)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

RUNS = ("supervised_silog", "supervised_ssi", "mono_tf", "mono_posenet", "stereo")
MODELS = ("model", "model_best")


def _row(run: str, report: dict, model: str) -> str:
    cfg = report["model"]["config"]
    res = report["results"]
    m, u, c = res["model"], res["untrained"], res["constant"]
    which = f"final (step {cfg['step']})" if model == "model" else f"best val. {cfg.get('selected_by', '?')} (step {cfg['step']})"
    return (f"| `{run}` | {which} | {report['settings']['alignment']} | **{m['abs_rel']:.3f}** | {m['sq_rel']:.4f} | "
            f"{m['rmse']:.3f} | {m['rmse_log']:.3f} | {m['a1']:.3f} | {u['abs_rel']:.3f} | {c['abs_rel']:.3f} |")


def main(argv: list[str]) -> int:
    ref = Path(argv[1] if len(argv) > 1 else "out/ref")
    lines = ["| run | weights | alignment | AbsRel | SqRel | RMSE (m) | RMSE log | δ<1.25 | AbsRel untrained | "
             "AbsRel constant |", "|---|---|---|---|---|---|---|---|---|---|"]
    missing = []
    for run in RUNS:
        for model in MODELS:
            for suffix in ("", "_median"):
                path = ref / run / f"eval_{model}{suffix}.json"
                if path.is_file():
                    lines.append(_row(run, json.loads(path.read_text()), model))
                elif not suffix:
                    missing.append(str(path))
    print("\n".join(lines))
    if missing:
        print(f"\nmissing: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
