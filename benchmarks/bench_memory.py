"""Memory at paper scale: the decoded-image cache and the peak RSS of one
paper-shaped model-guidance run, on a COCO-sized stand-in (synthetic COCO 2014 at 480-640 px, the
release's typical size), extrapolated to the real releases' image counts. Writes JSON to --out DIR
(nothing here asserts a size).

Measured:
- ``cache``: bytes the `BoxDataset` cache holds per image (uint8 image at 224 px + segmentation) for
  a preloaded split, as the MG runner builds it (``size=224, cache=True``); times the release counts
  (COCO 2014: 82,783 train2014 images split into train / val, 40,504 val2014 as test; VOC 2007: 5,011
  trainval + 4,952 test).
- ``runs``: peak RSS (``ru_maxrss`` of a child process) of one vanilla ResNet-50 baseline step +
  evaluation at 224 px for a few batch sizes (one step each: train split = one batch), fitted
  linearly in the batch size and extrapolated to the paper's 64.
- ``decode``: the time to decode + resize one COCO-sized JPEG (what a DataLoader worker without a
  cache pays per image).

    python benchmarks/bench_memory.py --out benchmarks/out
    python benchmarks/bench_memory.py --out /tmp/b --batches 4 8 --images 16     # minutes on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: images per split of the real releases (the counts `rightfocus check` compares against)
RELEASE_IMAGES = {"coco2014": {"train+val": 82783, "test": 40504}, "voc2007": {"train+val": 5011, "test": 4952}}
PAPER_BATCH = 64


def cache_bytes(root: Path, split: str, size: int = 224) -> dict:
    """Bytes per image the preloaded cache holds (images and segmentations separately)."""
    from rightfocus.data import load_dataset

    ds = load_dataset("coco2014", root, split, size=size, cache=True).preload()
    img = sum(v[0].numel() * v[0].element_size() for v in ds._cache.values())
    seg = sum(v[1].numel() * v[1].element_size() for v in ds._cache.values() if v[1] is not None)
    seg_dtype = next((str(v[1].dtype) for v in ds._cache.values() if v[1] is not None), None)
    n = len(ds)
    return {"images": n, "image_bytes_per_image": img / n, "seg_bytes_per_image": seg / n, "seg_dtype": seg_dtype,
            "bytes_per_image": (img + seg) / n}


def decode_time(root: Path, n: int = 16) -> float:
    """Seconds to decode and resize one COCO-sized JPEG to 224 px (mean of `n`)."""
    from rightfocus.data.base import decode_image

    files = sorted((root / "train2014").glob("*.jpg"))[:n]
    t = time.perf_counter()
    for f in files:
        decode_image(f, (224, 224))
    return (time.perf_counter() - t) / len(files)


_CHILD = r"""
import json, resource, sys, torch
from rightfocus.runs.config import RunConfig
from rightfocus.training.runner import train_run
cfg = RunConfig.from_dict(json.loads(sys.argv[1]))
torch.set_num_threads(1)
train_run(cfg, sys.argv[2], progress=False)
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def run_rss(root: Path, batch: int, results: Path) -> dict:
    """Peak RSS of one vanilla ResNet-50 baseline run (one training step of `batch` images at 224 px,
    evaluation of val and test) in a fresh process."""
    from rightfocus.runs.config import RunConfig

    cfg = RunConfig(paper="mg", dataset="coco2014", data_root=str(root), model_kind="vanilla", arch="resnet50",
                    epochs=1, lr=1e-4, batch_size=batch, image_size=224, profile="bench", seed=batch)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cfg.to_dict()), str(results)],
                         capture_output=True, text=True, check=True)
    rss = json.loads(out.stdout.strip().splitlines()[-1])["maxrss_kib"] * 1024
    return {"batch": batch, "peak_rss_bytes": rss, "wall_s": time.perf_counter() - t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--images", type=int, default=32, help="images per split of the cache measurement")
    parser.add_argument("--skip-runs", action="store_true", help="only the cache and decode measurements")
    args = parser.parse_args()
    from rightfocus.data.synthetic import make, release_size_options

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make("coco2014", tmp / "coco_cache", **release_size_options("coco2014", args.images))
        cache = cache_bytes(root, "train")
        decode_s = decode_time(root)
        runs = []
        if not args.skip_runs:
            for b in args.batches:
                # train split = exactly one batch (one step); val / test 8 images
                opts = {**release_size_options("coco2014", 8), "n_train": b}
                r = make("coco2014", tmp / f"coco_b{b}", seed=b, **opts)
                runs.append(run_rss(r, b, tmp / "results"))
    per_image = cache["bytes_per_image"]
    extrap = {name: {"images": sum(c.values()), "cache_gib": per_image * sum(c.values()) / 2**30}
              for name, c in RELEASE_IMAGES.items()}
    fit = None
    if len(runs) >= 2:
        import numpy as np

        slope, icpt = np.polyfit([r["batch"] for r in runs], [r["peak_rss_bytes"] for r in runs], 1)
        fit = {"rss_bytes_per_image_in_batch": float(slope), "rss_bytes_at_batch_0": float(icpt),
               f"rss_gib_at_batch_{PAPER_BATCH}": float(icpt + slope * PAPER_BATCH) / 2**30}
    report = {
        "benchmark": "memory", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
        "cache": cache, "cache_extrapolated": extrap, "decode_resize_s_per_image": decode_s,
        "runs": runs, "rss_fit": fit,
        "note": "stand-in COCO at 480-640 px; peak RSS measured on CPU (torch, one thread) for the batch "
                "sizes given and extrapolated linearly to batch 64; cache extrapolated to the release counts",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench_memory.json"
    path.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    print(path)


if __name__ == "__main__":
    main()
