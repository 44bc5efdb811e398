"""Explanation-metric speed: our batched torch metrics (`rightfocus.metrics`) against Quantus 0.6.0 on
the same maps, in one process, repeats interleaved (ours, Quantus, ours, ...), median per metric.

Inputs: `--n` maps of `--size` px (default 1,000 at 224 px, float32), smoothed Gaussian noise with
random ties-free values, and box masks of random size and place. Quantus gets numpy arrays [N, 1, H, W]
with ``normalise=False, abs=False`` (the same work as ours) and its default batch size of 64; ours
score `--chunk` maps per call. Both run on `--threads` CPU threads (torch and BLAS) and are timed in CPU
seconds of the process (other load on a shared host does not count); with CUDA present ours is timed
there too (wall seconds between synchronisations). The JSON holds seconds per metric, the ratio Quantus / ours
and the largest difference between the two scores (NaN-free entries).

    python benchmarks/bench_metrics.py --out benchmarks/out            # ~2 min on one CPU core
    python benchmarks/bench_metrics.py --out /tmp/b --n 100 --repeats 1  # seconds

Numbers are measurements, not tests; the goal (>= 20x Quantus on CPU for the localisation metrics)
is recorded next to them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable

#: Quantus class name and keyword arguments per registered metric
#: (the registry's Relevance Mass Accuracy scores the maps' positive part: Quantus gets that part too)
POSITIVE_PART = {"relevance_mass_accuracy"}
QUANTUS = {
    "pointing_game": ("PointingGame", {}),
    "attribution_localisation": ("AttributionLocalisation", {"positive_attributions": True}),
    "top_k_intersection": ("TopKIntersection", {"k": 1000}),
    "relevance_mass_accuracy": ("RelevanceMassAccuracy", {}),
    "relevance_rank_accuracy": ("RelevanceRankAccuracy", {}),
    "auc": ("AUC", {}),
}
GOAL = (">=", 20.0)


def _inputs(n: int, size: int, seed: int = 0):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 1, size, size, generator=g)
    maps = F.avg_pool2d(noise, 9, stride=1, padding=4)[:, 0] + 1e-4 * torch.rand(n, size, size, generator=g)
    masks = torch.zeros(n, size, size)
    lo = torch.randint(0, size // 2, (n, 2), generator=g)
    ext = torch.randint(4, size // 2, (n, 2), generator=g)
    for i in range(n):
        y0, x0 = lo[i].tolist()
        masks[i, y0:y0 + ext[i, 0], x0:x0 + ext[i, 1]] = 1
    return maps, masks


def _timed(fn: Callable[[], object], sync: Callable[[], None] | None = None) -> tuple[float, object]:
    """CPU seconds of this process (robust to other load on a shared host); with `sync` (CUDA): wall
    seconds between two synchronisations."""
    clock = time.perf_counter if sync is not None else time.process_time
    if sync is not None:
        sync()
    t0 = clock()
    out = fn()
    if sync is not None:
        sync()
    return clock() - t0, out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/out")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--metrics", nargs="*", default=list(QUANTUS))
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))
    import numpy as np
    import quantus
    import torch

    from rightfocus.metrics import MAP_METRICS

    torch.set_num_threads(args.threads)
    maps, masks = _inputs(args.n, args.size)
    a_np, s_np = maps[:, None].numpy(), masks[:, None].numpy()
    x_np, y_np = np.zeros_like(a_np), np.zeros(args.n, dtype=int)
    cuda = torch.cuda.is_available()
    maps_gpu, masks_gpu = (maps.cuda(), masks.cuda()) if cuda else (None, None)

    def ours(name: str, m, s) -> Callable[[], torch.Tensor]:
        fn = MAP_METRICS[name].fn
        return lambda: torch.cat([fn(m[i:i + args.chunk], s[i:i + args.chunk]) for i in range(0, len(m), args.chunk)])

    def theirs(name: str) -> Callable[[], np.ndarray]:
        cls, kw = QUANTUS[name]
        metric = getattr(quantus, cls)(normalise=False, abs=False, disable_warnings=True, **kw)

        def run() -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = np.maximum(a_np, 0) if name in POSITIVE_PART else a_np
                return np.asarray(metric(model=None, x_batch=x_np, y_batch=y_np, a_batch=a, s_batch=s_np,
                                         channel_first=True), dtype=np.float64)
        return run

    sync = torch.cuda.synchronize if cuda else None
    times: dict[str, dict[str, list[float]]] = {m: {"ours_cpu": [], "quantus": [], "ours_cuda": []} for m in args.metrics}
    diffs: dict[str, float] = {}
    if cuda:  # warm-up of the CUDA kernels
        for m in args.metrics:
            ours(m, maps_gpu, masks_gpu)()
        sync()
    def summarise(done: int) -> dict:
        result: dict = {
            "benchmark": "bench_metrics", "date": datetime.date.today().isoformat(),
            "n_maps": args.n, "size": args.size, "repeats": done, "threads": args.threads,
            "chunk": args.chunk, "dtype": "float32", "quantus": quantus.__version__, "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "cuda": torch.cuda.get_device_name() if cuda else None, "goal_cpu_ratio": list(GOAL), "metrics": {},
        }
        for m in args.metrics:
            q = statistics.median(times[m]["quantus"])
            o = statistics.median(times[m]["ours_cpu"])
            entry = {"quantus_s": q, "ours_cpu_s": o, "ratio_cpu": q / o, "meets_goal": q / o >= GOAL[1],
                     "max_abs_diff": diffs[m], "all_s": times[m]}
            if cuda:
                c = statistics.median(times[m]["ours_cuda"])
                entry.update({"ours_cuda_s": c, "ratio_cuda": q / c})
            result["metrics"][m] = entry
            if done == args.repeats:
                print(f"{m:26s} quantus {q:8.3f}s  ours {o:7.3f}s  x{q / o:7.1f}"
                  + (f"  cuda {entry['ours_cuda_s']:.4f}s x{entry['ratio_cuda']:.0f}" if cuda else "")
                  + f"  max|diff| {diffs[m]:.1e}")
        return result

    def write(result: dict) -> Path:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"bench_metrics_{'cuda' if cuda else 'cpu'}_{result['date']}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        return path

    for r in range(args.repeats):
        for m in args.metrics:
            order = ("ours", "quantus") if r % 2 == 0 else ("quantus", "ours")
            for who in order:
                if who == "ours":
                    t, ours_out = _timed(ours(m, maps, masks))
                    times[m]["ours_cpu"].append(t)
                else:
                    t, q_out = _timed(theirs(m))
                    times[m]["quantus"].append(t)
            if cuda:
                t, _ = _timed(ours(m, maps_gpu, masks_gpu), sync)
                times[m]["ours_cuda"].append(t)
            finite = np.isfinite(q_out)
            diffs[m] = float(np.abs(ours_out.double().numpy()[finite] - q_out[finite]).max())
        path = write(summarise(r + 1))  # after every repeat: a cut-short run keeps what it measured
    print(f"wrote {path}")
    return summarise(args.repeats)


if __name__ == "__main__":
    main()
