"""Responsiveness of the heatmap inspector on CPU: time to switch to a new image (maps computed from the
checkpoints), to switch back to one already seen (LRU cache), and to draw / encode the figure.
Writes JSON to --out DIR (nothing here asserts a speed).

It uses the runs under ``--results/--profile`` when there are any (``make demo`` writes them); otherwise
it builds a stand-in tree the same shape as the demo's: synthetic VOC at 64 px, untrained tiny vanilla
and B-cos models (a baseline and a guided run each) and a tiny AIM model, saved with the store's writers.
Untrained weights cost exactly what trained ones cost.

    python benchmarks/bench_inspector.py --out benchmarks/out
    python benchmarks/bench_inspector.py --out /tmp/b --images 6 --size 32     # seconds
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rightfocus.widgets import InspectorState
from rightfocus.widgets.render import save_png


def _stand_in_tree(root: Path, size: int) -> tuple[Path, list[list[str]]]:
    """Synthetic VOC + untrained demo-sized models in the results store's format."""
    from rightfocus.data import load_dataset
    from rightfocus.data.synthetic import make
    from rightfocus.runs import store
    from rightfocus.runs.config import RunConfig
    from rightfocus.models import build_model
    from rightfocus.training import aim_loop
    from rightfocus.training.checkpoint import save_weights

    data = make("voc2007", root / "voc", seed=0, n_train=8, n_val=8, n_test=40)
    results = root / "results"
    k = load_dataset("voc2007", data, "test").num_classes

    def write(config: RunConfig, model: torch.nn.Module) -> str:
        rdir = store.run_dir(results, "demo", config.run_id)
        store.write_config(rdir, config)
        save_weights(rdir / "ckpt" / "epoch_1.pt", model, k, 1)
        store.write_done(rdir, {"selected_epoch": 1, "front_epochs": [1]})
        return config.run_id

    common = dict(paper="mg", dataset="voc2007", data_root=str(data), arch="tiny", image_size=size, profile="demo")
    sets = []
    for kind, method in (("vanilla", "ixg"), ("bcos", "bcos")):
        torch.manual_seed(0)
        model = build_model(kind, "tiny", k).eval()
        base = RunConfig(model_kind=kind, **common)
        guided = RunConfig(model_kind=kind, method=method, tap="input", loss="energy", lam=1.0,
                           init_from=base.run_id, **common)
        sets.append([write(base, model), write(guided, model)])
    aim = RunConfig(paper="aim", dataset="voc2007", data_root=str(data), model_kind="aim", arch="tiny",
                    image_size=size, profile="demo", lam=6.0, extra={"pretrained": False, "drop_path": None})
    model = aim_loop.build_run_model(aim, k, pretrained=False).eval()
    sets.append([sets[0][0], write(aim, model)])
    aim_loop._store_masks(model, load_dataset("voc2007", data, "test", size=size), [0, 1, 2],
                          store.run_dir(results, "demo", aim.run_id), 1)
    return results, sets


def _ms(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"median_ms": 1e3 * statistics.median(values), "p90_ms": 1e3 * values[int(0.9 * (len(values) - 1))],
            "max_ms": 1e3 * values[-1], "n": len(values)}


def bench(results: Path, profile: str, runs: list[str], n_images: int) -> dict:
    """Cold switch (new image: maps of every run), warm switch (revisit), figure and PNG times."""
    state = InspectorState(results, profile, runs, split="test")
    n = min(n_images, state.num_images)
    state.select(index=0)
    state.view()  # load models and the dataset once; not part of a switch
    cold, warm, draw, png = [], [], [], []
    for i in range(1, n):
        t = time.perf_counter()
        state.select(index=i)
        view = state.view()
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        fig = state.figure(view)
        draw.append(time.perf_counter() - t)
        t = time.perf_counter()
        save_png(fig, io.BytesIO())
        png.append(time.perf_counter() - t)
    for i in range(1, n):
        state.select(index=i)
        state.png()  # what the widget shows: drawn once per view, then cached
    warm_png = []
    for i in range(1, n):
        t = time.perf_counter()
        state.select(index=i)
        state.view()
        warm.append(time.perf_counter() - t)
        state.png()
        warm_png.append(time.perf_counter() - t)
    t = time.perf_counter()
    state.image_epg(runs[0])
    scan = time.perf_counter() - t
    return {
        "runs": [f"{r} ({state.label(r)})" for r in runs], "method": state.method, "tap": state.tap,
        "image_size": list(state.sample(0)["image"].shape[-2:]),
        "switch_new_image": _ms(cold), "switch_cached_image": _ms(warm),
        "switch_cached_image_with_png": _ms(warm_png),
        "draw_figure": _ms(draw), "encode_png": _ms(png),
        "per_image_epg_scan_s": scan, "scan_images": state.num_images,
        "cache": {"entries": len(state.cache), "hits": state.cache.hits, "misses": state.cache.misses},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for bench_inspector.json")
    parser.add_argument("--results", default="results")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--images", type=int, default=20, help="images to switch through")
    parser.add_argument("--size", type=int, default=64, help="image size of the stand-in tree")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: no oversubscription)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        state = InspectorState(args.results, args.profile)
        available = state.available_runs() if (Path(args.results) / args.profile).exists() else []
        if available:
            source = f"{args.results}/{args.profile}"
            configs = {r: state.config(r) for r in available}
            base = next((r for r in available if configs[r].is_baseline), available[0])
            same = [r for r in available if r != base and configs[r].dataset == configs[base].dataset
                    and configs[r].image_size == configs[base].image_size]
            sets = [[base, *same[:1]]]
            results = Path(args.results)
        else:
            source = f"stand-in tree (synthetic VOC, untrained tiny models, {args.size} px)"
            results, sets = _stand_in_tree(Path(tmp), args.size)
        out = {
            "benchmark": "inspector", "source": source, "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
            "note": ("a widget switch to a new image = switch_new_image + draw_figure + encode_png; back to a "
                     "seen one = switch_cached_image_with_png"),
            "cases": [bench(results, args.profile, runs, args.images) for runs in sets],
        }
    path = Path(args.out)
    path.mkdir(parents=True, exist_ok=True)
    (path / "bench_inspector.json").write_text(json.dumps(out, indent=1))
    for case in out["cases"]:
        print(f"{' | '.join(case['runs'])}: new image {case['switch_new_image']['median_ms']:.0f} ms, "
              f"cached {case['switch_cached_image']['median_ms']:.1f} ms (with PNG "
              f"{case['switch_cached_image_with_png']['median_ms']:.1f} ms), figure "
              f"{case['draw_figure']['median_ms']:.0f} ms, png {case['encode_png']['median_ms']:.0f} ms")
    print(path / "bench_inspector.json")


if __name__ == "__main__":
    main()
