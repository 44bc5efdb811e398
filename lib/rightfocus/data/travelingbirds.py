"""TravelingBirds (Koh et al. 2020): CUB birds pasted on backgrounds that depend on the species in the
train tree and are shifted in the test tree (AIM, Alshami et al. 2025, Sec. 4).

On disk: ``CUB_fixed/{train,test}/<class_dir>/<file>.jpg`` holds every CUB image in both trees; CUB train
images are read from the train tree and CUB test images from the test tree. Labels, boxes and masks come
from the CUB metadata (`cub_root`, default: a CUB_200_2011 folder inside or next to `root`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rightfocus.data.base import BoxDataset, check_root
from rightfocus.data.cub import cub_records, find_cub_root, read_cub_meta, split_train_val

LAYOUT = """<root>/
  CUB_fixed/train/<class_dir>/<file>.jpg   (species-specific backgrounds)
  CUB_fixed/test/<class_dir>/<file>.jpg    (shifted backgrounds)
  CUB_200_2011/ (metadata: images.txt, bounding_boxes.txt, ...; or pass cub_root=...)"""


def load_travelingbirds(root: str | Path, split: str, cub_root: str | Path | None = None,
                        val_fraction: float = 0.0, val_seed: int = 0, seg_threshold: int = 127,
                        **options: Any) -> BoxDataset:
    """TravelingBirds `split` in train / val (a `val_fraction` of train) / test."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown TravelingBirds split {split!r}; use train, val (with val_fraction) or test")
    root = Path(root)
    fixed = next((d for d in (root / "CUB_fixed", root) if (d / "train").is_dir() and (d / "test").is_dir()), None)
    if fixed is None:
        check_root(root / "CUB_fixed", LAYOUT, ("train", "test"))
    meta = read_cub_meta(find_cub_root(*(Path(c) for c in ([cub_root] if cub_root else [root, root.parent]))))
    ids = sorted(i for i in meta.paths if meta.is_train[i] == (split != "test"))
    if split != "test":
        ids = split_train_val(ids, split, val_fraction, val_seed)
    tree = fixed / ("test" if split == "test" else "train")  # type: ignore[operator]
    records = cub_records(meta, ids, tree, seg_threshold)
    return BoxDataset(records, meta.classes, name="travelingbirds", split=split, source=str(tree), **options)
