"""ImageFolder datasets (ImageNet-100, ImageWoof; AIM, Alshami et al. 2025, Sec. 4) with optional ILSVRC
localisation boxes, and Hard-ImageNet (Moayeri et al. 2022) with its object masks.

ImageFolder on disk: ``<root>/{train,val}/<wnid>/<file>.JPEG``; classes = sorted folder names.
ILSVRC boxes (optional, needed for EPG): ``loc_csv`` = a ``LOC_{train,val}_solution.csv`` (ImageId,
PredictionString = "wnid x0 y0 x1 y1 wnid x0 ..."; True = look for it in root), or ``loc_xml`` = a folder
of per-image VOC-style XML (``<stem>.xml`` or ``<wnid>/<stem>.xml``). ILSVRC coordinates are used as
given (x0 = xmin, x1 = xmax) as the usual ILSVRC evaluation code does.

Hard-ImageNet on disk: mask root ``<root>/{train,val}/<wnid>_<original filename>`` (image-sized masks,
object = value > 0; the file may carry the image's extension or .png) and the ImageNet images under
``imagenet_root/{train,val}/<wnid>/<original filename>`` (default ``<root>/imagenet``). The dataset
is the images that have a mask; classes = the sorted wnids found among the masks.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from rightfocus.data.base import BinaryMaskReader, BoxDataset, Record, check_root

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LAYOUT = """<root>/
  train/<wnid>/<file>.JPEG
  val/<wnid>/<file>.JPEG
  LOC_train_solution.csv, LOC_val_solution.csv   (optional ILSVRC boxes; or loc_xml=<folder of XML>)"""
HARD_LAYOUT = """<root>/                          (Hard-ImageNet masks)
  train/<wnid>_<original filename>    val/<wnid>_<original filename>
<imagenet_root>/ (default <root>/imagenet)
  train/<wnid>/<original filename>    val/<wnid>/<original filename>"""


def _read_loc_csv(path: Path) -> dict[str, list[tuple[str, float, float, float, float]]]:
    if not path.is_file():
        raise FileNotFoundError(f"ILSVRC localisation file not found: {path}. Expected layout:\n{LAYOUT}")
    out: dict[str, list[tuple[str, float, float, float, float]]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("ImageId", "PredictionString") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column(s) {missing} in the header {reader.fieldnames}; an ILSVRC "
                             f"LOC_*_solution.csv starts with 'ImageId,PredictionString'")
        for row in reader:
            where = f"{path} line {reader.line_num} (ImageId {row['ImageId']!r})"
            tok = (row["PredictionString"] or "").split()
            if len(tok) % 5:
                raise ValueError(f"{where}: {len(tok)} fields; expected groups of 'wnid x0 y0 x1 y1'; fix that row")
            try:
                out[row["ImageId"]] = [(tok[k], *map(float, tok[k + 1:k + 5])) for k in range(0, len(tok), 5)]
            except ValueError:
                raise ValueError(f"{where}: coordinates must be numbers in 'wnid x0 y0 x1 y1' groups, got "
                                 f"{row['PredictionString']!r}; fix that row") from None
    return out


def _read_loc_xml(folder: Path, wnid: str, stem: str) -> list[tuple[str, float, float, float, float]]:
    for path in (folder / f"{stem}.xml", folder / wnid / f"{stem}.xml"):
        if path.is_file():
            from rightfocus.data.voc import parse_voc_xml

            return parse_voc_xml(path, one_based=False)[1]  # ILSVRC coordinates are used as given
    return []


def _box_rows(objs: list, index: dict[str, int], where: str) -> np.ndarray:
    rows = []
    for wnid, x0, y0, x1, y1 in objs:
        if wnid not in index:
            known = ", ".join(list(index)[:20]) + (" ..." if len(index) > 20 else "")
            raise ValueError(f"unknown class {wnid!r} in {where}; known classes: {known}")
        rows.append([index[wnid], x0, y0, x1, y1])
    return np.asarray(rows, np.float32).reshape(-1, 5)


def load_imagefolder(root: str | Path, split: str, loc_csv: str | Path | bool | None = None,
                     loc_xml: str | Path | None = None, **options: Any) -> BoxDataset:
    """ImageFolder `split` (a subfolder of root, usually train / val) with optional ILSVRC boxes."""
    root = check_root(root, LAYOUT)
    folder = root / split
    if not folder.is_dir():
        raise ValueError(f"imagefolder: split {split!r} not found ({folder} is missing); splits present: "
                         f"{sorted(p.name for p in root.iterdir() if p.is_dir())}")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    index = {c: k for k, c in enumerate(classes)}
    boxes_by_id = None
    if loc_csv:
        boxes_by_id = _read_loc_csv(root / f"LOC_{split}_solution.csv" if loc_csv is True else Path(loc_csv))
    records = []
    for wnid in classes:
        for path in sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in IMG_EXTENSIONS):
            if boxes_by_id is not None:
                boxes = _box_rows(boxes_by_id.get(path.stem, []), index, str(loc_csv))
            elif loc_xml:
                boxes = _box_rows(_read_loc_xml(Path(loc_xml), wnid, path.stem), index, str(loc_xml))
            else:
                boxes = np.zeros((0, 5), np.float32)
            records.append(Record(path=path, labels=[index[wnid]], boxes=boxes))
    return BoxDataset(records, classes, name="imagefolder", split=split, source=str(folder), **options)


def _mask_box(reader: BinaryMaskReader, label: int) -> np.ndarray:
    mask = reader()
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return np.zeros((0, 5), np.float32)
    return np.asarray([[label, xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)


def load_hardimagenet(root: str | Path, split: str, imagenet_root: str | Path | None = None,
                      **options: Any) -> BoxDataset:
    """Hard-ImageNet `split` (train / val): images with their object mask (``seg`` 1 = object) and the
    mask's bounding box as the one box (the release has masks, not boxes)."""
    if split not in ("train", "val"):
        raise ValueError(f"unknown Hard-ImageNet split {split!r}; use train or val")
    root = check_root(root, HARD_LAYOUT, (split,))
    inet = Path(imagenet_root) if imagenet_root else root / "imagenet"
    check_root(inet, HARD_LAYOUT, (split,))
    masks = sorted(p for p in (root / split).iterdir() if p.is_file())
    pairs = []
    for m in masks:
        wnid, _, original = m.name.partition("_")
        if not original:
            raise ValueError(f"Hard-ImageNet mask {m} is not named <wnid>_<original filename>")
        candidates = [inet / split / wnid / original] + [inet / split / wnid / (Path(original).stem + e)
                                                          for e in (".JPEG", ".jpg", ".jpeg", ".png")]
        image = next((c for c in candidates if c.is_file()), None)
        if image is None:
            raise FileNotFoundError(f"image for Hard-ImageNet mask {m} not found (looked for {candidates[0]} "
                                    f"and other extensions). Expected layout:\n{HARD_LAYOUT}")
        pairs.append((wnid, image, m))
    classes = sorted({w for w, _, _ in pairs})
    index = {c: k for k, c in enumerate(classes)}
    records = []
    for wnid, image, m in pairs:
        reader = BinaryMaskReader(m, 0)
        records.append(Record(path=image, labels=[index[wnid]], boxes=_mask_box(reader, index[wnid]),
                              seg=reader))
    return BoxDataset(records, classes, name="hardimagenet", split=split, source=str(root / split), **options)
