"""Waterbirds (Sagawa et al. 2020) and Waterbirds-100 (Petryk et al. 2022), as used by MG (Rao et al.
2023, Sec. 5.5 and supplement D.1.2) and AIM (Alshami et al. 2025, Sec. 4).

On disk: a folder with ``metadata.csv`` (img_id, img_filename, y, split, place, place_filename; y 1 =
waterbird, split 0/1/2 = train/val/test, place 1 = water) and the images at ``<img_filename>``. The
95 % and 100 % releases differ only in the training confounder strength. Images keep their CUB image's
size, so CUB's ``bounding_boxes.txt`` and ``segmentations/`` apply (`cub_root`).
Groups: group = 2*y + place (0 landbird-land, 1 landbird-water, 2 waterbird-land, 3 waterbird-water).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from rightfocus.data.base import BoxDataset, Record, check_root
from rightfocus.data.cub import find_cub_root, read_cub_meta

FOLDERS = {95: "waterbird_complete95_forest2water2", 100: "waterbird_complete100_forest2water2"}
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
TASKS = {"bird": ["landbird", "waterbird"], "place": ["land", "water"]}
LAYOUT = """<root>/ (or <root>/waterbird_complete{95,100}_forest2water2/)
  metadata.csv   (img_id,img_filename,y,split,place,place_filename)
  <class_dir>/<file>.jpg
CUB_200_2011/ next to it or inside root (bounding_boxes.txt, images.txt, segmentations/), or cub_root=..."""


METADATA_COLUMNS = ("img_filename", "y", "split", "place")
_RANGES = {"split": (0, 1, 2), "y": (0, 1), "place": (0, 1)}


def _ints(row: dict[str, Any], keys: tuple[str, ...], path: Path, line: int) -> list[int]:
    """Integer fields of one metadata.csv row; errors name the file, line, column and the fix."""
    out = []
    for k in keys:
        value = row.get(k)
        try:
            v = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            v = None
        if v not in _RANGES[k]:
            raise ValueError(f"{path} line {line}: column {k!r} is {value!r}, expected one of {_RANGES[k]}; "
                             f"fix that row (or regenerate metadata.csv)")
        out.append(v)
    return out


def group_of(y: int, place: int) -> int:
    """Waterbirds group index: 2*y + place."""
    return 2 * y + place


def load_waterbirds(root: str | Path, split: str, confounder: int = 100, task: str = "bird",
                    modified_val: bool = False, cub_root: str | Path | None = None,
                    seg_threshold: int = 127, **options: Any) -> BoxDataset:
    """Waterbirds `split` in train / val / test.

    confounder: 95 or 100, selects the release folder when `root` holds both (ignored when `root` itself
      has metadata.csv). task: "bird" (conventional: label = y, guidance mask = the box) or "place"
      (reversed: label = place, guidance mask = everything OUTSIDE the box; samples carry
      ``invert_mask`` True and the box's class is the place label). modified_val: keep only groups 0
      and 3 in val (MG supplement D.1.2: a validation set distributed like train, to avoid leaking the
      test distribution into checkpoint selection).
    Samples carry ``group`` and ``place``; ``seg`` is the CUB mask (1 = bird).
    """
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown Waterbirds split {split!r}; use one of {tuple(SPLIT_CODES)}")
    if task not in TASKS:
        raise ValueError(f"unknown Waterbirds task {task!r}; use 'bird' (conventional) or 'place' (reversed)")
    if modified_val and split != "val":
        raise ValueError("modified_val applies to split 'val' only")
    root = Path(root)
    if (root / "metadata.csv").is_file():
        folder = root
    else:
        if confounder not in FOLDERS:
            raise ValueError(f"confounder must be 95 or 100, got {confounder!r}")
        folder = check_root(root / FOLDERS[confounder], LAYOUT, ("metadata.csv",))
    meta = read_cub_meta(find_cub_root(*(Path(c) for c in ([cub_root] if cub_root else
                                                            [folder, folder.parent, root]))))
    cub_id = meta.id_of()
    records = []
    csv_path = folder / "metadata.csv"
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in METADATA_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: no column(s) {missing} in the header {reader.fieldnames}; the "
                             f"Waterbirds metadata.csv has {', '.join(METADATA_COLUMNS)} (re-download or regenerate it)")
        for row in reader:
            code, y, place = _ints(row, ("split", "y", "place"), csv_path, reader.line_num)
            if code != SPLIT_CODES[split]:
                continue
            group = group_of(y, place)
            if modified_val and group not in (0, 3):
                continue
            fname = row["img_filename"]
            if fname not in cub_id:
                raise ValueError(f"{csv_path} line {reader.line_num}: {fname!r} is not in {meta.root / 'images.txt'}; "
                                 "is cub_root the CUB release the Waterbirds images were made from?")
            i = cub_id[fname]
            target = y if task == "bird" else place
            box = meta.boxes.get(i)
            rows = np.asarray([[target, *box]], np.float32) if box is not None else np.zeros((0, 5), np.float32)
            records.append(Record(path=folder / fname, labels=[target], boxes=rows,
                                  seg=meta.seg_reader(i, seg_threshold),
                                  extra={"group": group, "place": place}))
    return BoxDataset(records, TASKS[task], name="waterbirds", split=split,
                      source=f"{folder / 'metadata.csv'} (split={SPLIT_CODES[split]})",
                      invert_masks=(task == "place"), **options)
