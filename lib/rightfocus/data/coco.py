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


#: keys every record of a COCO instances file needs here (others are ignored)
REQUIRED = {"images": ("id", "file_name", "height", "width"), "annotations": ("image_id", "category_id", "bbox"),
            "categories": ("id", "name")}


def _check_instances(data: Any, path: Path) -> None:
    """The parts of a COCO instances JSON this loader reads; errors name the file, the record and the fix."""
    fix = "fix the file or re-download the COCO 2014 annotations"
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the JSON is a {type(data).__name__}, expected an object with "
                         f"{list(REQUIRED)}; {fix}")
    for key, fields in REQUIRED.items():
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: no {key!r} list (keys found: {sorted(data)}); {fix}")
        for k, rec in enumerate(data[key]):
            missing = [f for f in fields if not isinstance(rec, dict) or f not in rec]
            if missing:
                raise ValueError(f"{path}: {key}[{k}] lacks {missing} (a COCO {key[:-1] if key != 'categories' else 'category'} "
                                 f"has {list(fields)}); {fix}")
    for k, ann in enumerate(data["annotations"]):
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise ValueError(f"{path}: annotations[{k}] (id {ann.get('id')}) has bbox {box!r}, expected "
                             f"[x, y, width, height] numbers; {fix}")


def _quiet_coco(path: Path):
    """pycocotools' COCO index of an instances file, validated first (a bare JSONDecodeError or
    KeyError from pycocotools names no file)."""
    import json

    from pycocotools.coco import COCO

    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}. Expected layout:\n{LAYOUT}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}); fix the "
                         f"file or re-download the COCO 2014 annotations") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text (JSON) file ({exc}); re-download the COCO 2014 annotations") from None
    _check_instances(data, path)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco = COCO()
        coco.dataset = data
        coco.createIndex()
    return coco


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
