"""Datasets in their real on-disk formats, one sample schema, joint transforms, box utilities and
input encodings (see `rightfocus.data.base` for the schema). Synthetic generators that write the same
formats live in `rightfocus.data.synthetic`."""

from rightfocus.data.annotations import annotation_subset
from rightfocus.data.base import BoxDataset, Record
from rightfocus.data.boxes import boxes_to_masks, class_masks, clip_boxes, dilate_boxes, round_boxes
from rightfocus.data.collate import SEG_VOID, collate
from rightfocus.data.encoding import ENCODINGS, encode
from rightfocus.data.registry import LOADERS, load_dataset
from rightfocus.data.transforms import TrainTransform, hflip, resize, resized_crop

DATASETS = tuple(LOADERS)

__all__ = [
    "BoxDataset", "DATASETS", "ENCODINGS", "LOADERS", "Record", "SEG_VOID", "TrainTransform",
    "annotation_subset", "boxes_to_masks", "class_masks", "clip_boxes", "collate", "dilate_boxes",
    "encode", "hflip", "load_dataset", "resize", "resized_crop", "round_boxes",
]
