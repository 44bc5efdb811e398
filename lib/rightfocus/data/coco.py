"""MS COCO 2014 (Lin et al.), read with pycocotools (Rao et al. 2023, Sec. 5: multi-label, 80 classes).

On disk: ``{train2014,val2014}/COCO_<split>2014_%012d.jpg``, ``annotations/instances_{train,val}2014.json``.
Splits as in the MG code (NN-Explainer): ``train`` and ``val`` are subsets of train2014 listed in split
files, ``test`` is val2014 (``train2014`` = all of train2014). Class index = rank of the category id
among the JSON's categories (the 80 of the 91 ids that are used, for the real release).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from rightfocus.data.base import BoxDataset, Record, check_root

SPLITS = ("train", "val", "test", "train2014")
LAYOUT = """<root>/
  train2014/COCO_train2014_<id:012d>.jpg
  val2014/COCO_val2014_<id:012d>.jpg
  annotations/instances_train2014.json, annotations/instances_val2014.json
  splits/train.txt, splits/val.txt   (subsets of train2014, one image id or file name per line;
                                      other paths via split_files={"train": ..., "val": ...})"""


def _quiet_coco(path: Path):
    from pycocotools.coco import COCO

    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}. Expected layout:\n{LAYOUT}")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        return COCO(str(path))


def _split_ids(path: Path, split: str, coco: Any) -> list[int]:
    if not path.is_file():
        raise FileNotFoundError(f"COCO split file for {split!r} not found: {path}. Expected layout:\n{LAYOUT}")
    by_name = {img["file_name"]: img["id"] for img in coco.dataset["images"]}
    ids = []
    for line in path.read_text().splitlines():
        tok = line.strip()
        if not tok:
            continue
        if tok.isdigit():
            ids.append(int(tok))
        elif Path(tok).name in by_name:
            ids.append(by_name[Path(tok).name])
        else:
            raise ValueError(f"{path}: entry {tok!r} is neither an image id nor a file name of train2014")
    return ids


class CocoSeg:
    """Segmentation from pycocotools' annToMask: class index + 1 per pixel, later annotations drawn
    over earlier ones, crowd regions included. Picklable; the COCO index is shared by reference."""

    def __init__(self, coco: Any, image_id: int, cat_index: dict[int, int]) -> None:
        self.coco, self.image_id, self.cat_index = coco, image_id, cat_index

    def __call__(self) -> np.ndarray:
        info = self.coco.imgs[self.image_id]
        seg = np.zeros((info["height"], info["width"]), np.int64)
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=[self.image_id], iscrowd=None)):
            seg[self.coco.annToMask(ann) > 0] = self.cat_index[ann["category_id"]] + 1
        return seg


def load_coco2014(root: str | Path, split: str, split_files: dict[str, str] | None = None, **options: Any
                  ) -> BoxDataset:
    """COCO 2014 `split` in train / val / test / train2014 (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"unknown COCO split {split!r}; use one of {SPLITS}")
    root = check_root(root, LAYOUT, ("annotations",))
    folder = "val2014" if split == "test" else "train2014"
    ann_file = root / "annotations" / f"instances_{folder}.json"
    coco = _quiet_coco(ann_file)
    cats = sorted(coco.cats)
    cat_index = {cid: k for k, cid in enumerate(cats)}
    names = [coco.cats[c]["name"] for c in cats]
    if split in ("train", "val"):
        files = {"train": root / "splits" / "train.txt", "val": root / "splits" / "val.txt"}
        files.update({k: Path(v) for k, v in (split_files or {}).items()})
        ids = _split_ids(files[split], split, coco)
        source = str(files[split])
    else:
        ids = sorted(coco.imgs)
        source = str(ann_file)
    records = []
    for img_id in ids:
        if img_id not in coco.imgs:
            raise ValueError(f"image id {img_id} of split {split!r} is not in {ann_file}")
        info = coco.imgs[img_id]
        rows = []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=None)):
            if ann["category_id"] not in cat_index:
                raise ValueError(f"{ann_file}: annotation {ann.get('id')} has unknown category id "
                                 f"{ann['category_id']}; known ids: {cats}")
            x, y, w, h = ann["bbox"]
            rows.append([cat_index[ann["category_id"]], x, y, x + w, y + h])
        records.append(Record(path=root / folder / info["file_name"], labels=sorted({int(r[0]) for r in rows}),
                              boxes=np.asarray(rows, np.float32).reshape(-1, 5),
                              seg=CocoSeg(coco, img_id, cat_index),
                              size=(int(info["height"]), int(info["width"]))))
    ds = BoxDataset(records, names, name="coco2014", split=split, source=source, **options)
    ds.coco = coco  # type: ignore[attr-defined]  # for callers that want pycocotools' own index
    return ds
