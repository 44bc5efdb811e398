"""Synthetic datasets written in EXACTLY the real releases' on-disk formats, so the real loaders read
them (the demo profile's data). Every image's objects are polygons whose segmentation is exact and whose
box contains background; each kind carries a controllable shortcut (co-occurrence, backgrounds).

`make(kind, out_dir, seed=0, **size_options)` writes one kind and returns the folder to pass to
`rightfocus.data.load_dataset(kind, folder, split)`. Besides the real format it writes one file,
``rightfocus_synthetic.json`` (kind, seed, options and every image's objects/boxes, end exclusive), used
by the tests and the gallery and ignored by the loaders. Same seed and options -> same bytes.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rightfocus.data.synthetic.birds import make_cub, make_travelingbirds, make_waterbirds
from rightfocus.data.synthetic.coco import make_coco
from rightfocus.data.synthetic.draw import write_json
from rightfocus.data.synthetic.imagenet import make_hardimagenet, make_imagefolder
from rightfocus.data.synthetic.voc import make_voc

MANIFEST = "rightfocus_synthetic.json"
_WRITERS: dict[str, tuple[Callable[..., list[dict]], tuple[str, ...]]] = {
    # kind: (writer, top-level entries it owns under out_dir)
    "voc2007": (make_voc, ("VOCdevkit",)),
    "coco2014": (make_coco, ("train2014", "val2014", "annotations", "splits")),
    "waterbirds": (make_waterbirds, ("CUB_200_2011", "waterbird_complete95_forest2water2",
                                     "waterbird_complete100_forest2water2")),
    "cub": (make_cub, ("CUB_200_2011",)),
    "travelingbirds": (make_travelingbirds, ("CUB_200_2011", "CUB_fixed")),
    "imagefolder": (make_imagefolder, ("train", "val", "LOC_train_solution.csv", "LOC_val_solution.csv")),
    "hardimagenet": (make_hardimagenet, ("imagenet", "train", "val")),
}
#: canonical kinds, in the order `make-data all` writes them
KINDS: tuple[str, ...] = tuple(_WRITERS)
ALIASES = {"voc": "voc2007", "coco": "coco2014"}


def canonical(kind: str) -> str:
    """The canonical kind name (maps the aliases voc, coco); raises on unknown kinds."""
    k = ALIASES.get(kind, kind)
    if k not in _WRITERS:
        raise ValueError(f"unknown synthetic dataset kind {kind!r}; use one of {', '.join(KINDS)} "
                         "(aliases: voc, coco) or 'all'")
    return k


def make(kind: str, out_dir: str | Path, seed: int = 0, **size_options: Any) -> Path:
    """Write a small synthetic `kind` dataset into `out_dir` and return `out_dir`.

    size_options are the writer's keyword arguments (e.g. voc2007: n_train, n_val, n_test, classes,
    min_size, max_size, p_pair, seg_fraction; waterbirds: n_train, n_val, n_test, landbird_fraction;
    cub / travelingbirds: per_class, num_classes; imagefolder / hardimagenet: n_train, n_val,
    num_classes). A folder previously written by `make` is replaced; any other non-empty folder is
    refused, so nothing of the user's is deleted.
    """
    kind = canonical(kind)
    writer, owned = _WRITERS[kind]
    allowed = [p for p in inspect.signature(writer).parameters if p not in ("out", "rng")]
    unknown = sorted(set(size_options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for synthetic {kind}; allowed: {', '.join(allowed)}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise FileExistsError(f"{out} is not empty and was not written by `.venv/bin/rightfocus make-data`; "
                                  "choose an empty or new folder")
        for name in set(owned) | {MANIFEST} | {e for _, o in _WRITERS.values() for e in o}:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    records = writer(out, np.random.default_rng(seed), **size_options)
    write_json(out / MANIFEST, {"kind": kind, "seed": seed, "options": {k: v for k, v in size_options.items()},
                                "images": records})
    return out


#: the releases' typical image sizes as (min, max) side ranges for the generators' ``min_size`` /
#: ``max_size`` (each side drawn independently): VOC 2007 mostly 500x375 / 375x500, COCO 2014 mostly
#: 640x480 / 480x640 (up to 640), CUB-200-2011 (and Waterbirds / TravelingBirds built from it) ~500x~370,
#: ImageNet ~500x375 (Hard-ImageNet / ImageNet-100 are ImageNet images)
RELEASE_SIZES: dict[str, tuple[int, int]] = {
    "voc2007": (375, 500), "coco2014": (480, 640), "waterbirds": (370, 500), "cub": (370, 500),
    "travelingbirds": (370, 500), "imagefolder": (375, 500), "hardimagenet": (375, 500),
}


def release_size_options(kind: str, images_per_split: int) -> dict[str, Any]:
    """Size options for `make` giving images at the release's typical size (`RELEASE_SIZES`) and about
    `images_per_split` images in each split (the rehearsal's stand-in data)."""
    kind = canonical(kind)
    lo, hi = RELEASE_SIZES[kind]
    n = int(images_per_split)
    if n < 2:
        raise ValueError(f"images_per_split must be >= 2, got {n}")
    opts: dict[str, Any] = {"min_size": lo, "max_size": hi}
    if kind in ("voc2007", "coco2014", "waterbirds"):
        opts.update(n_train=n, n_val=n, n_test=n)
    elif kind in ("cub", "travelingbirds"):
        # per_class images per species, split train / test by the release's ~60 / 40 fraction
        classes = 6
        opts.update(num_classes=classes, per_class=max(2, round(2 * n / classes)))
    else:  # imagefolder / hardimagenet: n_train / n_val images per class
        classes = 8 if kind == "imagefolder" else 5
        opts.update(num_classes=classes, n_train=max(1, round(n / classes)), n_val=max(1, round(n / classes)))
    return opts
