"""Datasets as a registry: `DATASETS`, a `Registry` of `DatasetSpec`, and `load_dataset`, the one
entry point for every on-disk format. Imports no torch: built-in readers are named as
``"module:function"`` and imported on the first load.

An entry is either a format (it has a `reader`: voc2007, coco2014, waterbirds, cub, travelingbirds,
imagefolder, hardimagenet) or a named variant of one (`loader` names the format, `options` presets
its settings): AIM's datasets (Alshami et al. 2025, Sec. 4) are waterbirds95 / waterbirds100 (the
Waterbirds reader with confounder 95 / 100), imagenet100 and imagewoof (image folders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from rightfocus.dotted import resolve
from rightfocus.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset name and what the code needs to know about it.

    reader: ``reader(root, split, **options) -> BoxDataset`` (or ``"module:function"``) for a format;
        None for a variant of the format named by `loader`.
    loader: the format entry whose reader reads the files (a format: its own name); also the folder
        the demo's synthetic data of this dataset is written to (`rightfocus make-data`).
    folder: the sub-folder of the data root that holds the real dataset (default: the name).
    options: reader settings this name stands for (e.g. ``{"confounder": 95}``); a caller's own
        options override them.
    multi_label: images carry several labels (VOC, COCO: F1 / mAP) rather than one class.
    num_groups: the evaluation groups (Waterbirds: 4 = bird x place), None where there are none.
    segmentations: samples can carry segmentation masks (``seg``).
    papers: the papers whose grids name this dataset ("mg", "aim").

    For the grids' data table it unpacks as ``(loader, folder, options)``.
    """

    name: str
    reader: Callable[..., Any] | str | None = None
    loader: str = ""
    folder: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    multi_label: bool = False
    num_groups: int | None = None
    segmentations: bool = False
    papers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "loader", self.loader or self.name)
        object.__setattr__(self, "folder", self.folder or self.name)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.loader, self.folder, dict(self.options)))

    def __getitem__(self, index: int) -> Any:
        return tuple(self)[index]


DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", "register a rightfocus.data.DatasetSpec in rightfocus.data.DATASETS (see docs/extending.md)")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add `spec` to `DATASETS` under its name (aliases resolve through `canonical_name`)."""
    taken = [a for a in spec.aliases if canonical_name(a) is not None]
    if taken:
        raise ValueError(f"dataset alias(es) {taken} are taken already")
    DATASETS.register(spec.name, spec)
    return spec


def canonical_name(name: str) -> str | None:
    """The registered name `name` is or is an alias of; None if neither."""
    if name in DATASETS:
        return name
    return next((n for n, s in DATASETS.items() if name in s.aliases), None)


def dataset_spec(name: str) -> "DatasetSpec":
    """The `DatasetSpec` of `name` or of the entry `name` is an alias of (`UnknownName` otherwise)."""
    return DATASETS[canonical_name(name) or name]


_DATA = "rightfocus.data"
for _spec in (
    DatasetSpec("voc2007", f"{_DATA}.voc:load_voc2007", aliases=("voc",), multi_label=True, segmentations=True,
                papers=("mg",)),
    DatasetSpec("coco2014", f"{_DATA}.coco:load_coco2014", aliases=("coco",), multi_label=True,
                segmentations=True, papers=("mg",)),
    DatasetSpec("waterbirds", f"{_DATA}.waterbirds:load_waterbirds", num_groups=4, segmentations=True,
                papers=("mg",)),
    DatasetSpec("cub", f"{_DATA}.cub:load_cub", segmentations=True, papers=("aim",)),
    DatasetSpec("waterbirds95", loader="waterbirds", folder="waterbirds", options={"confounder": 95}, num_groups=4,
                segmentations=True, papers=("aim",)),
    DatasetSpec("waterbirds100", loader="waterbirds", folder="waterbirds", options={"confounder": 100},
                num_groups=4, segmentations=True, papers=("aim",)),
    DatasetSpec("travelingbirds", f"{_DATA}.travelingbirds:load_travelingbirds", segmentations=True,
                papers=("aim",)),
    DatasetSpec("imagefolder", f"{_DATA}.imagefolder:load_imagefolder"),
    DatasetSpec("imagenet100", loader="imagefolder", papers=("aim",)),
    DatasetSpec("hardimagenet", f"{_DATA}.imagefolder:load_hardimagenet", segmentations=True, papers=("aim",)),
    DatasetSpec("imagewoof", loader="imagefolder", papers=("aim",)),
):
    register_dataset(_spec)


def formats() -> tuple[str, ...]:
    """Names of the entries that have a reader (the on-disk formats), in registration order."""
    return tuple(n for n, s in DATASETS.items() if s.reader is not None)


def paper_datasets(paper: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """``{name: (loader, folder, options)}`` of the datasets `paper`'s grids name (`DatasetSpec.papers`)."""
    return {n: tuple(s) for n, s in DATASETS.items() if paper in s.papers}


def __getattr__(name: str) -> Any:
    if name == "LOADERS":  # format name -> its reader function (imports the readers)
        return {n: resolve(DATASETS[n].reader) for n in formats()}
    if name == "ALIASES":
        return {a: n for n, s in DATASETS.items() for a in s.aliases}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_dataset(name: str, root: str | Path, split: str, **options: Any) -> Any:
    """A torch Dataset of dict samples in the shared schema (see `rightfocus.data.base`).

    name: a `DATASETS` entry or alias: voc2007 | coco2014 | waterbirds | cub | travelingbirds |
    imagefolder | hardimagenet (aliases voc, coco), or a variant (waterbirds95, imagenet100, ...: its
    format's reader with the variant's options). options: the common ones (size, center_crop,
    train_transform, annotation_fraction, annotation_seed, dilation, cache, box_rounding, with_seg; see
    `BoxDataset`) plus each reader's own (e.g. waterbirds: confounder, task, modified_val, cub_root;
    voc2007: classes; coco2014: split_files; cub / travelingbirds: val_fraction; imagefolder: loc_csv,
    loc_xml; hardimagenet: imagenet_root). A relative `root` that does not exist from the working
    directory is taken from the project root (`rightfocus.project.resolve`), so runs trained by `make`
    load from notebooks/ too.
    """
    key = canonical_name(name)
    if key is None:
        aliases = ", ".join(a for s in DATASETS.values() for a in s.aliases)
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)} (aliases: {aliases}); "
                         f"to add one, {DATASETS.how_to_add}")
    spec = DATASETS[key]
    reader_spec = spec if spec.reader is not None else DATASETS[spec.loader]
    if not Path(root).is_absolute() and not Path(root).exists():
        from rightfocus import project

        root = project.resolve(root)  # a run's relative root is the project root's (data/synthetic/...)
    return resolve(reader_spec.reader)(root, split, **{**spec.options, **options})
