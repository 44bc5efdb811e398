"""PASCAL VOC 2007 (Everingham et al.): the MG paper's main multi-label dataset (Rao et al. 2023, Sec. 5).

On disk: ``VOCdevkit/VOC2007/{Annotations/<id>.xml, ImageSets/Main/<split>.txt, JPEGImages/<id>.jpg,
SegmentationClass/<id>.png}``. XML boxes are 1-based inclusive pixels; here they become 0-based end
exclusive (x0 = xmin - 1, x1 = xmax). Difficult and truncated objects are kept (as the MG code does).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rightfocus.data.base import BoxDataset, LabelPngReader, Record, check_root

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
SPLITS = ("train", "val", "trainval", "test")
LAYOUT = """VOCdevkit/VOC2007/
  Annotations/<id>.xml          (<size>, <object><name><difficult><bndbox> 1-based)
  ImageSets/Main/{train,val,trainval,test}.txt
  JPEGImages/<id>.jpg
  SegmentationClass/<id>.png    (optional; palettised, 255 = void)
(root may be the folder holding VOCdevkit, VOCdevkit itself, or VOC2007)"""


def _voc_dir(root: Path) -> Path:
    for cand in (root / "VOCdevkit" / "VOC2007", root / "VOC2007", root):
        if (cand / "Annotations").is_dir():
            return cand
    return check_root(root / "VOCdevkit" / "VOC2007", LAYOUT, ("Annotations", "ImageSets/Main", "JPEGImages"))


def parse_voc_xml(path: Path, one_based: bool = True
                  ) -> tuple[tuple[int, int] | None, list[tuple[str, float, float, float, float]]]:
    """(H, W) from <size> (None if absent) and the objects as (name, x0, y0, x1, y1), 0-based end-exclusive
    (`one_based` False: coordinates as given, ILSVRC's convention)."""
    try:
        tree = ET.parse(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file not found: {path}") from None
    except ET.ParseError as exc:  # its message has the line and column
        raise ValueError(f"cannot parse annotation {path}: malformed XML ({exc}); fix the file or "
                         f"re-download the VOC annotations") from None
    root = tree.getroot()
    size = root.find("size")
    hw = None
    if size is not None and size.findtext("height") and size.findtext("width"):
        hw = (int(_number(size, "height", path, "<size>")), int(_number(size, "width", path, "<size>")))
        if hw[0] <= 0 or hw[1] <= 0:
            hw = None
    objects = []
    for k, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"{path}: object {k} ({name!r}) has no <bndbox>; add one or delete the object")
        where = f"<bndbox> of object {k} ({name!r})"
        xmin, ymin, xmax, ymax = (_number(bb, t, path, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        shift = 1.0 if one_based else 0.0
        objects.append((name, xmin - shift, ymin - shift, xmax, ymax))
    return hw, objects


def _number(node: ET.Element, tag: str, path: Path, where: str) -> float:
    """A numeric child of an XML node; errors name the file, the element and the fix."""
    text = node.findtext(tag)
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        got = "missing" if text is None else repr(text)
        raise ValueError(f"{path}: <{tag}> in {where} is {got}, expected a number; fix the annotation "
                         f"(or re-download it)") from None


def _read_ids(path: Path, split: str) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"split file for {split!r} not found: {path}; known splits: {SPLITS}")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _resolve_classes(classes: str | Sequence[str], names_seen: set[str]) -> list[str]:
    if classes == "voc":
        return list(VOC_CLASSES)
    if classes == "auto":
        return [c for c in VOC_CLASSES if c in names_seen]
    if isinstance(classes, str):
        raise ValueError(f"classes must be 'auto', 'voc' or a list of VOC class names, got {classes!r}")
    unknown = [c for c in classes if c not in VOC_CLASSES]
    if unknown:
        raise ValueError(f"unknown VOC class {unknown[0]!r}; known classes: {', '.join(VOC_CLASSES)}")
    return list(classes)


def load_voc2007(root: str | Path, split: str, classes: str | Sequence[str] = "auto", **options: Any
                 ) -> BoxDataset:
    """VOC 2007 `split` in train / val / trainval / test.

    classes: "auto" (default) = the VOC classes that occur in the annotations of ALL splits, in VOC order
    (the real release: all 20; synthetic data: the few it uses), "voc" = all 20, or an explicit list
    (objects of other VOC classes are then dropped). An object whose name is not a VOC class raises.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown VOC split {split!r}; use one of {SPLITS}")
    voc = _voc_dir(Path(root))
    check_root(voc, LAYOUT, ("Annotations", "ImageSets/Main", "JPEGImages"))
    main = voc / "ImageSets" / "Main"
    ids = _read_ids(main / f"{split}.txt", split)
    parsed = {i: parse_voc_xml(voc / "Annotations" / f"{i}.xml") for i in ids}
    seen = {name for _, objs in parsed.values() for name, *_ in objs}
    for name in sorted(seen):
        if name not in VOC_CLASSES:
            files = [voc / "Annotations" / f"{i}.xml" for i, (_, objs) in parsed.items() if any(o[0] == name for o in objs)]
            more = f" (and {len(files) - 1} more file(s))" if len(files) > 1 else ""
            raise ValueError(f"unknown class {name!r} in {files[0]}{more}; known VOC classes: "
                             f"{', '.join(VOC_CLASSES)}")
    if classes == "auto":
        for other in SPLITS:  # the class list must not depend on the split
            f = main / f"{other}.txt"
            if other != split and f.is_file():
                for i in _read_ids(f, other):
                    seen.update(n for n, *_ in parse_voc_xml(voc / "Annotations" / f"{i}.xml")[1])
    names = _resolve_classes(classes, seen)
    index = {c: k for k, c in enumerate(names)}
    records = []
    for i in ids:
        hw, objs = parsed[i]
        rows = [[index[n], x0, y0, x1, y1] for n, x0, y0, x1, y1 in objs if n in index]
        seg_path = voc / "SegmentationClass" / f"{i}.png"
        records.append(Record(
            path=voc / "JPEGImages" / f"{i}.jpg",
            labels=sorted({int(r[0]) for r in rows}),
            boxes=np.asarray(rows, np.float32).reshape(-1, 5),
            seg=_VocSeg(seg_path, [VOC_CLASSES.index(c) + 1 for c in names]) if seg_path.is_file() else None,
            size=hw,
        ))
    return BoxDataset(records, names, name="voc2007", split=split, source=str(main / f"{split}.txt"), **options)


class _VocSeg:
    """SegmentationClass PNG remapped to this dataset's class list: value = class index + 1,
    0 background, 255 void; pixels of VOC classes outside the list become background."""

    def __init__(self, path: Path, voc_ids: list[int]) -> None:
        self.reader, self.voc_ids = LabelPngReader(path), voc_ids

    def __call__(self) -> np.ndarray:
        raw = self.reader()
        lut = np.zeros(256, np.int64)
        lut[255] = 255
        for k, vid in enumerate(self.voc_ids):
            lut[vid] = k + 1
        return lut[np.clip(raw, 0, 255)]
