"""What the ext groups (guidance beyond boxes: `experiments.ext_grids`) add to `make demo`: the CPU
seconds of training of every ext demo run that no MG / AIM demo group already trains, one torch thread
each, as `make demo` runs them.

Trains first what those runs read and do not count (the MG and AIM demo runs they share: baselines,
box-guided runs, the B-cos teachers, AIM's Waterbirds-100 run), then each added run once, and writes
one JSON: per added run its CPU seconds (process time) and wall seconds, and their total.

    python benchmarks/ext_demo_cost.py --results results --out benchmarks/out   # after `make data`

Not part of `make bench` (it trains ~30 demo runs). Numbers are measurements, not tests; notebook
start-up (one papermill execution per ext group) and rendering come on top.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results", help="results root (profile demo)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--out", default="benchmarks/out", help="folder for ext_demo_cost.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from rightfocus.experiments import aim_grids, ext_grids, grids
    from rightfocus.runs import store
    from rightfocus.training.runner import train_run

    shared = {c.run_id for c in grids.all_configs("demo", args.data_root)} | {
        c.run_id for c in aim_grids.all_configs("demo", args.data_root)}
    runs = {c.run_id: c for c in ext_grids.all_configs("demo", args.data_root)}
    before = [ext_grids.aim_run("demo", args.data_root)] + [c for c in runs.values() if c.run_id in shared]
    added = [c for c in runs.values() if c.run_id not in shared]
    key = lambda c: (not c.is_baseline, c.mask_source.startswith(("teacher", "aim")))  # noqa: E731
    for c in sorted(before, key=key):
        train_run(c, args.results, progress=False)
    measured = {}
    for c in sorted(added, key=key):
        if store.is_done(store.run_dir(args.results, "demo", c.run_id)):
            raise SystemExit(f"{c.run_id} is already trained under {args.results}: use a fresh results folder")
        cpu, wall = time.process_time(), time.perf_counter()
        train_run(c, args.results, progress=False)
        measured[c.run_id] = {"cpu_s": round(time.process_time() - cpu, 2), "wall_s": round(time.perf_counter() - wall, 2)}
        print(c.run_id, measured[c.run_id], flush=True)
    report = {"what": "CPU seconds of training of the ext demo runs that no MG / AIM demo group trains",
              "machine": platform.platform(), "torch_threads": 1, "runs": measured,
              "total_cpu_s": round(sum(m["cpu_s"] for m in measured.values()), 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ext_demo_cost.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{len(measured)} added runs: {report['total_cpu_s']} CPU-s -> {out / 'ext_demo_cost.json'}")


if __name__ == "__main__":
    main()
