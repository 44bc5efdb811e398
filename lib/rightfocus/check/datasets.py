"""The datasets a grid reads, checked through the project's own loaders (`rightfocus.data.load_dataset`):
layout found, image / annotation / group / class counts against the releases' (`known_counts.KNOWN`),
every listed image file present and non-empty, and a sample of images (and their masks) decoded.

A loader error (missing folder, split file, annotation file, unreadable annotation) is an ERROR whose
text is the loader's own message; a count that differs from the release is a WARNING.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rightfocus.check.known_counts import KNOWN, KnownCounts, counts_key
from rightfocus.check.problems import ERROR, WARNING, Problem
from rightfocus.runs.config import RunConfig

#: MG runs read train / val / test of their dataset (`training.mg_task.build_datasets`)
MG_SPLITS = ("train", "val", "test")


@dataclass
class DataSpec:
    """One dataset as the grid reads it: the loader, its root and options, the splits, the groups."""

    dataset: str
    loader: str
    root: str
    options: dict[str, Any]
    splits: tuple[str, ...]
    groups: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.loader, self.root, repr(sorted(self.options.items())))

    @property
    def known(self) -> KnownCounts | None:
        return KNOWN.get(counts_key(self.dataset, self.loader, self.options))


@dataclass
class SplitRow:
    """One line of the datasets table."""

    dataset: str
    split: str
    layout: str = "-"
    images: str = "-"
    annotations: str = "-"
    groups: str = ""
    status: str = "ok"
    num_images: int | None = None
    num_classes: int | None = None


def data_specs(configs_by_group: dict[str, list[RunConfig]]) -> list[DataSpec]:
    """The datasets (loader, root, options, splits) the runs of each group read, once each."""
    specs: dict[tuple[str, str, str], DataSpec] = {}
    for group, configs in configs_by_group.items():
        for c in configs:
            if c.paper == "aim":  # the run's training loop reads AIM's dataset variants
                from rightfocus.data.registry import DATASETS

                loader, _, options = DATASETS[c.dataset]
                # AIM: val is a share of train; ImageNet folders test on their val split (aim_loop)
                splits = ("train", "val" if loader in ("imagefolder", "hardimagenet") else "test")
            else:
                loader, options, splits = c.dataset, dict(c.extra.get("data_options", {})), MG_SPLITS
            spec = DataSpec(c.dataset, loader, c.data_root, dict(options), splits)
            spec = specs.setdefault(spec.key, spec)
            if group not in spec.groups:
                spec.groups.append(group)
    return list(specs.values())


def _fmt_count(found: int, known: int | None) -> str:
    return f"{found}" if known is None else (f"{found} (= release)" if found == known else f"{found} (release {known})")


def _voc_non_difficult(records: Iterable[Any]) -> int:
    """Non-difficult objects of VOC records (the devkit's Table 1 counts only those)."""
    n = 0
    for rec in records:
        xml = Path(rec.path).parent.parent / "Annotations" / f"{Path(rec.path).stem}.xml"
        for obj in ET.parse(xml).getroot().iter("object"):
            n += (obj.findtext("difficult") or "0").strip() != "1"
    return n


def _sample(n: int, k: int) -> list[int]:
    """`k` indices spread evenly over range(n) (k <= 0: all)."""
    if k <= 0 or k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]


def check_split(spec: DataSpec, split: str, sample: int = 16) -> tuple[SplitRow, list[Problem]]:
    """Load `split` with the project's loader and check it (see the module docstring)."""
    from rightfocus.data import load_dataset
    from rightfocus.data.base import decode_image

    where = f"data {spec.dataset}/{split}"
    known = spec.known
    get = known.get if known else "put the dataset into its folder"
    row = SplitRow(spec.dataset, split)
    try:
        ds = load_dataset(spec.loader, spec.root, split, **spec.options)
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        row.layout, row.status = "missing" if isinstance(exc, FileNotFoundError) else "unreadable", "ERROR"
        return row, [Problem(ERROR, where, f"{spec.loader} loader: {exc}", f"{get} (dataset folder {spec.root})")]
    problems: list[Problem] = []
    records = ds.records
    root = Path(spec.root)
    try:
        common = Path(os.path.commonpath([str(r.path) for r in records[:500]]))
        row.layout = str(common.relative_to(root)) if common.is_relative_to(root) else str(common)
    except ValueError:
        row.layout = "?"
    # every listed image file: present and non-empty (a stat each; no decoding)
    missing, empty = [], []
    for rec in records:
        try:
            if os.stat(rec.path).st_size == 0:
                empty.append(rec.path)
        except FileNotFoundError:
            missing.append(rec.path)
    for label, paths in (("missing", missing), ("empty", empty)):
        if paths:
            problems.append(Problem(ERROR, where, f"{len(paths)} of {len(records)} listed image files are {label} "
                                    f"(first: {paths[0]})", f"re-extract the images ({get})"))
    # a sample decoded (images and their masks): catches corrupt files without reading every image
    bad = set(map(str, missing + empty))
    for i in _sample(len(records), sample):
        rec = records[i]
        if str(rec.path) in bad:
            continue
        try:
            decode_image(rec.path)
            if rec.seg is not None:
                rec.seg()
        except (ValueError, FileNotFoundError) as exc:
            problems.append(Problem(ERROR, where, str(exc), f"re-download or re-extract that file ({get})"))
    # counts against the release: every difference of this split in ONE warning
    diffs: list[str] = []
    n = len(records)
    row.num_images, row.num_classes = n, ds.num_classes
    k_img = known.images.get(split) if known else None
    row.images = _fmt_count(n, k_img)
    if k_img is not None and n != k_img:
        diffs.append(f"{n} images (release {k_img})")
    if spec.loader == "voc2007":
        n_obj, what = _voc_non_difficult(records), "non-difficult objects"
    else:
        n_obj, what = int(sum(len(r.boxes) for r in records)), "boxes"
    k_obj = known.objects.get(split) if known else None
    row.annotations = f"{_fmt_count(n_obj, k_obj)} {what}"
    if k_obj is not None and n_obj != k_obj:
        diffs.append(f"{n_obj} {what} (release {k_obj})")
    n_seg = sum(r.seg is not None for r in records)
    if n_seg:
        row.annotations += f", {n_seg} masks"
    if any("group" in r.extra for r in records):
        found = Counter(int(r.extra["group"]) for r in records)
        counts = tuple(found.get(g, 0) for g in range(4))
        row.groups = "/".join(map(str, counts))
        want = known.groups.get(split) if known else None
        if want is not None and any(w is not None and w != c for w, c in zip(want, counts)):
            shown = "/".join("?" if w is None else str(w) for w in want)
            diffs.append(f"groups 0-3 {row.groups} (release {shown})")
    if known and known.classes is not None and ds.num_classes != known.classes:
        diffs.append(f"{ds.num_classes} classes (release {known.classes})")
    if spec.loader == "coco2014" and split == "train" and getattr(ds, "coco", None) is not None:
        k_all, n_all = (known.images.get("train2014") if known else None), len(ds.coco.imgs)
        if k_all is not None and n_all != k_all:
            diffs.append(f"instances_train2014.json lists {n_all} images (release {k_all})")
    if diffs:
        problems.append(Problem(WARNING, where, f"counts differ from {known.release}: " + ", ".join(diffs),
                                f"expected on a stand-in tree; on real data a partial download or another "
                                f"version: {known.get}"))
    if any(p.level == ERROR for p in problems):
        row.status = "ERROR"
    elif problems:
        row.status = "warning"
    return row, problems


def check_datasets(specs: list[DataSpec], sample: int = 16, log=print) -> tuple[list[SplitRow], list[Problem]]:
    """Every split of every dataset the grid reads."""
    rows, problems = [], []
    for spec in specs:
        if not Path(spec.root).is_dir():  # one line for the whole dataset, not one per split
            rows += [SplitRow(spec.dataset, s, layout="missing", status="ERROR") for s in spec.splits]
            get = spec.known.get if spec.known else "put the dataset there"
            problems.append(Problem(ERROR, f"data {spec.dataset}",
                                    f"dataset folder {spec.root} does not exist (read by {', '.join(spec.groups)})",
                                    f"{get}, or point DATA_ROOT (--data-root) at the folder that holds {Path(spec.root).name}/"))
            continue
        for split in spec.splits:
            log(f"  checking {spec.dataset}/{split} under {spec.root} ...")
            row, found = check_split(spec, split, sample)
            rows.append(row)
            problems += found
    return rows, _merge_splits(problems)


def _merge_splits(problems: list[Problem]) -> list[Problem]:
    """One line for one cause: the same message from several splits of a dataset (e.g. a missing
    annotation file that every VOC split reads to find the class list) is reported once."""
    merged: dict[tuple[str, str, str, str], list[str]] = {}
    for p in problems:
        dataset, _, split = p.where.partition("/")
        merged.setdefault((p.level, dataset, p.what, p.fix), []).append(split)
    out = []
    for (level, dataset, what, fix), splits in merged.items():
        where = f"{dataset}/{','.join(s for s in splits)}" if any(splits) else dataset
        out.append(Problem(level, where, what, fix))
    return out
