"""The rehearsal (`make rehearse`): the papers' paper-profile grids at paper shapes on stand-in data
and stand-in weights, every run capped, through the same Make fragment, notebooks, selection and
figure renderers as the real thing, so a crash shows up in minutes on a CPU instead of hours into a
GPU allocation. Results go to ``<results>/rehearsal`` and ``figures/rehearsal`` (every figure says
REHEARSAL), never next to real ones.

Steps (each a subcommand of ``python -m rightfocus.experiments.rehearsal``):

- ``data ROOT``: the synthetic generators write every dataset the grids read, in the release layouts,
  at the releases' typical image sizes (`synthetic.RELEASE_SIZES`), a few dozen images per split,
  under the folder names the paper profile expects (``ROOT/voc2007``, ``ROOT/imagenet100``, ...).
- ``weights ROOT``: random-valued stand-in weights under the release file names the grids name
  (each paper's `Paper.weights`: MG's `grids.PAPER_WEIGHTS`, the AIM backbones' torchvision files), in
  each release's layout.
- ``grid --paper P``: the rehearsal grid's configs and Make fragment (`makefile.write_grid` with
  ``profile="rehearsal"``) of a standalone paper (`Paper.standalone`); ``--sample`` keeps one run per
  group and rehearsal key (MG: model kind x tap; the grid's ``rehearsal_key``), without it every run of
  the paper grid is rehearsed (``make rehearse FULL=1``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

#: paper-profile data folder -> synthetic kind (the AIM ImageNet subsets are image folders)
DATASETS: dict[str, str] = {
    "voc2007": "voc2007", "coco2014": "coco2014", "waterbirds": "waterbirds", "cub": "cub",
    "travelingbirds": "travelingbirds", "imagenet100": "imagefolder", "hardimagenet": "hardimagenet",
}
#: images per split of the stand-in data: the CPU rehearsal's default. Evaluation (attributions for
#: every class at every tap) dominates a CPU run's cost and grows with it: 8 images per split cost
#: ~74 CPU-s per MG run, 4 cost ~41 (papermill and imports ~14 of them), so the sampled rehearsal fits
#: in ~30 min on 2 cores. ``make rehearse FULL=1`` writes 80 (MG trains full batches of 64).
IMAGES_PER_SPLIT = 4


def write_data(root: str | Path, images_per_split: int = IMAGES_PER_SPLIT, seed: int = 0) -> list[Path]:
    """Write every dataset the paper grids read under `root`, at release-typical image sizes."""
    from rightfocus.data import synthetic

    out = []
    for folder, kind in DATASETS.items():
        path = synthetic.make(kind, Path(root) / folder, seed=seed,
                              **synthetic.release_size_options(kind, images_per_split))
        out.append(path)
    return out


def weight_files() -> list[str]:
    """Every weights file name the paper grids read from WEIGHTS_ROOT (`Paper.weight_files`)."""
    from rightfocus.papers import PAPERS

    return sorted({f for paper in PAPERS.values() for f in paper.weight_files()})


def write_weights(root: str | Path, seed: int = 0, names: Sequence[str] | None = None) -> list[Path]:
    """Random-valued stand-in weights under the release file names (`weight_files`, or `names`), in
    each release's exact layout (`rightfocus.models.release.write_standin`). Existing files are kept."""
    from rightfocus.models.release import write_standin

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names or weight_files():
        path = root / name
        if not path.exists():
            write_standin(name, path, seed=seed)
        out.append(path)
    return out


def write_grid(paper: str, results: str | Path, data_root: str, sample: bool, python: str = "$(PY)") -> Path:
    """The rehearsal grid of `paper` (configs, manifests, Make fragment); see the module docstring."""
    from rightfocus.experiments import makefile

    return makefile.write_grid("rehearsal", results, data_root, paper=paper, sample=sample, python=python)


def main(argv: Sequence[str] | None = None) -> int:
    from rightfocus.papers import standalone
    from rightfocus.registry import load_plugins

    load_plugins()
    parser = argparse.ArgumentParser(prog="python -m rightfocus.experiments.rehearsal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("data", help="stand-in datasets at release-typical sizes")
    p.add_argument("root")
    p.add_argument("--images", type=int, default=IMAGES_PER_SPLIT, help="images per split")
    p = sub.add_parser("weights", help="stand-in weights under the release file names")
    p.add_argument("root")
    p = sub.add_parser("grid", help="the rehearsal grid of one paper")
    p.add_argument("--paper", required=True, choices=standalone())
    p.add_argument("--results", default="results")
    p.add_argument("--data-root", required=True)
    p.add_argument("--sample", action="store_true", help="one run per group and model kind x tap (CPU)")
    args = parser.parse_args(argv)
    try:
        if args.step == "data":
            for path in write_data(args.root, args.images):
                print(path)
        elif args.step == "weights":
            for path in write_weights(args.root):
                print(path)
        else:
            print(write_grid(args.paper, args.results, args.data_root, args.sample))
    except (FileNotFoundError, ValueError) as exc:
        print(f"rehearsal {args.step}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
