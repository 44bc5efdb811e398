"""CUB-200-2011 (Wah et al.): 200 bird species with boxes and soft segmentations (AIM, Alshami et al.
2025, Sec. 4), and the metadata reader shared by Waterbirds and TravelingBirds.

On disk: ``CUB_200_2011/{images/<class_dir>/<file>.jpg, images.txt (id path), image_class_labels.txt
(id class 1..200), train_test_split.txt (id 1=train), bounding_boxes.txt (id x y w h, floats),
classes.txt (id class_dir)}`` and ``segmentations/<class_dir>/<file>.png`` (the separate release; looked
for inside the CUB folder and next to it). Segmentations are the average of several annotators: binarised
as value > `seg_threshold` (default 127, i.e. a majority).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rightfocus.data.base import BinaryMaskReader, BoxDataset, Record, check_root

LAYOUT = """CUB_200_2011/
  images/<class_dir>/<file>.jpg
  images.txt  image_class_labels.txt  train_test_split.txt  bounding_boxes.txt  classes.txt
  segmentations/<class_dir>/<file>.png   (or ../segmentations/; optional)"""
FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt", "classes.txt")


@dataclass
class CubMeta:
    """Parsed CUB metadata keyed by image id (ints from images.txt)."""

    root: Path
    paths: dict[int, str]
    labels: dict[int, int]  # 0-based
    is_train: dict[int, bool]
    boxes: dict[int, tuple[float, float, float, float]]  # x0, y0, x1, y1
    classes: list[str]
    seg_dir: Path | None

    def id_of(self) -> dict[str, int]:
        """Image path (as in images.txt) -> id."""
        return {p: i for i, p in self.paths.items()}

    def seg_reader(self, image_id: int, threshold: int) -> BinaryMaskReader | None:
        if self.seg_dir is None:
            return None
        path = self.seg_dir / Path(self.paths[image_id]).with_suffix(".png")
        return BinaryMaskReader(path, threshold) if path.is_file() else None


def _table(path: Path, fields: str, types: tuple[type, ...]) -> list[tuple[int, list[Any]]]:
    """(line number, typed fields) of every non-empty line of a CUB metadata file; `fields` names the
    columns (for errors), `types` converts them (the rest of a line is kept as text: file names may
    not hold spaces, but a trailing comment does no harm). Errors name the file, line and fix."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"CUB metadata file not found: {path}. Expected layout:\n{LAYOUT}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc}); re-download CUB_200_2011") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) < len(types):
            raise ValueError(f"{path} line {n}: expected {len(types)} fields '{fields}', got {len(tok)}: "
                             f"{line.strip()!r}; fix or delete that line (or re-download CUB_200_2011)")
        try:
            rows.append((n, [t(v) for t, v in zip(types, tok)] + tok[len(types):]))
        except ValueError:
            raise ValueError(f"{path} line {n}: fields '{fields}' must be {' '.join(t.__name__ for t in types)}, "
                             f"got {line.strip()!r}; fix or delete that line (or re-download CUB_200_2011)") from None
    return rows


def _by_id(path: Path, rows: list[tuple[int, list[Any]]]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for n, r in rows:
        if r[0] in out:
            raise ValueError(f"{path} line {n}: image id {r[0]} is listed twice; keep one line per id")
        out[r[0]] = r[1:]
    return out


def find_cub_root(*candidates: Path) -> Path:
    """The first candidate that is (or contains) a CUB_200_2011 folder with images.txt."""
    for c in candidates:
        for cand in (c, c / "CUB_200_2011"):
            if (cand / "images.txt").is_file():
                return cand
    raise FileNotFoundError(f"CUB_200_2011 metadata not found in any of {[str(c) for c in candidates]} "
                            f"(pass cub_root=...). Expected layout:\n{LAYOUT}")


def read_cub_meta(root: str | Path) -> CubMeta:
    """Parse the CUB text files; class names drop the numeric prefix ("001.Black_footed_Albatross" ->
    "Black_footed_Albatross")."""
    root = check_root(root, LAYOUT, FILES)
    paths = {i: r[0] for i, r in _by_id(root / "images.txt", _table(root / "images.txt", "id path", (int, str))).items()}
    tables = {name: _by_id(root / name, _table(root / name, fields, types)) for name, fields, types in (
        ("image_class_labels.txt", "id class", (int, int)), ("train_test_split.txt", "id is_train", (int, int)),
        ("bounding_boxes.txt", "id x y width height", (int, float, float, float, float)))}
    for name in ("image_class_labels.txt", "train_test_split.txt"):
        missing = sorted(set(paths) - set(tables[name]))
        if missing:
            raise ValueError(f"{root / name}: no line for image id {missing[0]} of {root / 'images.txt'} "
                             f"({len(missing)} ids missing); add them (or re-download CUB_200_2011)")
    labels = {i: r[0] - 1 for i, r in tables["image_class_labels.txt"].items()}
    is_train = {i: r[0] == 1 for i, r in tables["train_test_split.txt"].items()}
    boxes = {i: (x, y, x + w, y + h) for i, (x, y, w, h) in tables["bounding_boxes.txt"].items()}
    classes = [r[1].split(".", 1)[-1] for _, r in sorted(_table(root / "classes.txt", "id class_dir", (int, str)),
                                                          key=lambda nr: nr[1][0])]
    bad = sorted({y for y in labels.values() if not 0 <= y < len(classes)})
    if bad:
        raise ValueError(f"{root / 'image_class_labels.txt'}: class {bad[0] + 1} is not in {root / 'classes.txt'} "
                         f"(1..{len(classes)}); fix the label or the class list")
    seg_dir = next((d for d in (root / "segmentations", root.parent / "segmentations") if d.is_dir()), None)
    return CubMeta(root, paths, labels, is_train, boxes, classes, seg_dir)


def split_train_val(ids: list[int], split: str, val_fraction: float, val_seed: int) -> list[int]:
    """AIM protocol (Sec. 4): validation = a seeded `val_fraction` of the training split. `split` is
    "train" (the rest) or "val"; with val_fraction 0, "train" is the whole training split."""
    if split == "val" and val_fraction <= 0:
        raise ValueError("split 'val' needs val_fraction > 0 (e.g. 0.2: AIM uses 20 % of train)")
    if val_fraction <= 0:
        return ids
    perm = np.random.default_rng(val_seed).permutation(len(ids))
    n_val = int(round(val_fraction * len(ids)))
    chosen = set(perm[:n_val].tolist()) if split == "val" else set(perm[n_val:].tolist())
    return [i for k, i in enumerate(ids) if k in chosen]


def cub_records(meta: CubMeta, ids: list[int], image_root: Path, seg_threshold: int) -> list[Record]:
    """One record per CUB id: label = species, one box, the binarised segmentation (value 1)."""
    out = []
    for i in ids:
        y = meta.labels[i]
        box = meta.boxes.get(i)
        rows = np.asarray([[y, *box]], np.float32) if box is not None else np.zeros((0, 5), np.float32)
        out.append(Record(path=image_root / meta.paths[i], labels=[y], boxes=rows,
                          seg=meta.seg_reader(i, seg_threshold)))
    return out


def load_cub(root: str | Path, split: str, val_fraction: float = 0.0, val_seed: int = 0,
             seg_threshold: int = 127, **options: Any) -> BoxDataset:
    """CUB `split` in train / val / test (val = `val_fraction` of train, see `split_train_val`)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown CUB split {split!r}; use train, val (with val_fraction) or test")
    meta = read_cub_meta(find_cub_root(Path(root)))
    ids = sorted(i for i in meta.paths if meta.is_train[i] == (split != "test"))
    if split != "test":
        ids = split_train_val(ids, split, val_fraction, val_seed)
    records = cub_records(meta, ids, meta.root / "images", seg_threshold)
    return BoxDataset(records, meta.classes, name="cub", split=split,
                      source=str(meta.root / "train_test_split.txt"), **options)
