"""`load_dataset`: one entry point for every on-disk format."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rightfocus.data.base import BoxDataset
from rightfocus.data.coco import load_coco2014
from rightfocus.data.cub import load_cub
from rightfocus.data.imagefolder import load_hardimagenet, load_imagefolder
from rightfocus.data.travelingbirds import load_travelingbirds
from rightfocus.data.voc import load_voc2007
from rightfocus.data.waterbirds import load_waterbirds

LOADERS: dict[str, Callable[..., BoxDataset]] = {
    "voc2007": load_voc2007,
    "coco2014": load_coco2014,
    "waterbirds": load_waterbirds,
    "cub": load_cub,
    "travelingbirds": load_travelingbirds,
    "imagefolder": load_imagefolder,
    "hardimagenet": load_hardimagenet,
}
ALIASES = {"voc": "voc2007", "coco": "coco2014"}


def load_dataset(name: str, root: str | Path, split: str, **options: Any) -> BoxDataset:
    """A torch Dataset of dict samples in the shared schema (see `rightfocus.data.base`).

    name: voc2007 | coco2014 | waterbirds | cub | travelingbirds | imagefolder | hardimagenet (aliases
    voc, coco). options: the common ones (size, center_crop, train_transform, annotation_fraction,
    annotation_seed, dilation, cache, box_rounding, with_seg; see `BoxDataset`) plus each loader's own
    (e.g. waterbirds: confounder, task, modified_val, cub_root; voc2007: classes; coco2014: split_files;
    cub / travelingbirds: val_fraction; imagefolder: loc_csv, loc_xml; hardimagenet: imagenet_root).
    A relative `root` that does not exist from the working directory is taken from the project root
    (`rightfocus.project.resolve`), so runs trained by `make` load from notebooks/ too.
    """
    key = ALIASES.get(name, name)
    if key not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(LOADERS)} (aliases: voc, coco)")
    if not Path(root).is_absolute() and not Path(root).exists():
        from rightfocus import project

        root = project.resolve(root)  # a run's relative root is the project root's (data/synthetic/...)
    return LOADERS[key](root, split, **options)
