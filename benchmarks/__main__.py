"""Run the benchmark modules and print one row per measurement (see benchmarks/__init__.py)."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "43")
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

MODULES = ["bench_stereo", "bench_stereo_e2e", "bench_bag_read", "bench_sim_record", "bench_train", "bench_nodes", "bench_backends", "bench_descriptors",
           "bench_shipped_models"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute per module)")
    parser.add_argument("--only", action="append", choices=MODULES, help="run only this module (repeatable)")
    parser.add_argument("--json", help="also write all rows to this JSON file")
    args = parser.parse_args(argv)
    rows, failed = [], []
    for name in args.only or MODULES:
        t0 = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            module_rows = module.run(quick=args.quick)
        except Exception as exc:  # report and go on with the other modules
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
            continue
        for row in module_rows:
            row = {"module": name, **row}
            rows.append(row)
            target = f"  target {row['target']}" if row.get("target") else ""
            print(f"   {row['name']:<38} {row['value']:>10} {row['unit']:<10} baseline {row['baseline']:>10}"
                  f"  ratio {row['ratio']}{target}", flush=True)
        print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "failed": failed}, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
