"""Datasets in their real on-disk formats, one sample schema, joint transforms, box utilities and
input encodings (see `rightfocus.data.base` for the schema). Synthetic generators that write the same
formats live in `rightfocus.data.synthetic`.

The registry (`DATASETS` of `DatasetSpec`, `load_dataset`) imports no torch; the other names are
imported on first use, so ``from rightfocus.data.registry import DATASETS`` stays light.
"""

from __future__ import annotations

from rightfocus.data.collate import SEG_VOID, collate  # the function, not the module of the same name
from rightfocus.data.registry import DATASETS, DatasetSpec, load_dataset, register_dataset
from rightfocus.dotted import lazy_getattr

#: public name -> the submodule that defines it (imported on first use)
_LAZY = {
    "annotation_subset": "annotations", "BoxDataset": "base", "Record": "base", "boxes_to_masks": "boxes",
    "class_masks": "boxes", "clip_boxes": "boxes", "dilate_boxes": "boxes", "round_boxes": "boxes",
    "ENCODINGS": "encoding", "encode": "encoding",
    "LOADERS": "registry", "TrainTransform": "transforms", "hflip": "transforms", "resize": "transforms",
    "resized_crop": "transforms",
}

__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = [
    "BoxDataset", "DATASETS", "DatasetSpec", "ENCODINGS", "LOADERS", "Record", "SEG_VOID", "TrainTransform",
    "annotation_subset", "boxes_to_masks", "class_masks", "clip_boxes", "collate", "dilate_boxes",
    "encode", "hflip", "load_dataset", "register_dataset", "resize", "resized_crop", "round_boxes",
]
