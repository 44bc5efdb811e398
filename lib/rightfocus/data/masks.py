"""Localisation masks of one (image, class) and which of them a paper scores attributions against.

EPG and IoU compare a map with a mask: MG (Rao et al. 2023, Sec. 3.3) uses the union of the class's
boxes (its complement for samples flagged ``invert_mask``, the Waterbirds reversed task); AIM
(Alshami et al. 2025) uses the dataset's object segmentation where the image has one. On-object EPG
(Rao et al., supplement B.4) uses both: the segmentation inside the boxes.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from rightfocus.data.boxes import boxes_to_masks
from rightfocus.data.collate import SEG_VOID

#: what EPG / IoU are computed against: "auto" (the paper's rule, `localisation_source`), "boxes", "seg"
LOCALISATION_SOURCES = ("auto", "boxes", "seg")


def box_mask(sample: dict[str, Any], target: int) -> Tensor:
    """Union of `target`'s boxes in `sample`, [H, W] float, complemented when the sample is flagged
    ``invert_mask``."""
    size = tuple(sample["image"].shape[-2:])
    return boxes_to_masks(sample["boxes"], int(target), size, invert=bool(sample.get("invert_mask", False)))


def object_mask(seg: Tensor | None, target: int | Tensor, multi_label: bool) -> Tensor | None:
    """The object's pixels in a segmentation [H, W] (float), or None without one; batched: `seg`
    [N, H, W] with `target` [N] (one class per segmentation).

    Multi-label datasets (VOC, COCO) mark class k with id k + 1; single-label ones mark the object
    with any id other than 0 and `SEG_VOID` (binary segmentations such as CUB's and Waterbirds': id 1).
    """
    if seg is None:
        return None
    if multi_label:
        if isinstance(target, Tensor) and target.dim():
            return (seg == (target + 1).reshape(-1, *[1] * (seg.dim() - 1))).float()
        return (seg == int(target) + 1).float()
    return ((seg > 0) & (seg != SEG_VOID)).float()


def localisation_masks(sample: dict[str, Any], target: int, multi_label: bool) -> tuple[Tensor, Tensor | None]:
    """(`box_mask`, `object_mask` or None) of `target` in `sample`, [H, W] each."""
    return box_mask(sample, target), object_mask(sample.get("seg"), target, multi_label)


def localisation_source(paper: str, has_seg: bool, choice: str = "auto") -> str:
    """"boxes" or "seg": `choice`, where "auto" is the paper's rule (AIM: the segmentation when the
    image has one; MG: the boxes)."""
    if choice not in LOCALISATION_SOURCES:
        raise ValueError(f"unknown mask source {choice!r}; choose one of {LOCALISATION_SOURCES}")
    if choice == "auto":
        return "seg" if paper == "aim" and has_seg else "boxes"
    return choice


def localisation_mask(box: Tensor, obj: Tensor | None, source: str) -> Tensor:
    """The mask of `source` ("boxes" or "seg", `localisation_source`)."""
    if source == "seg":
        if obj is None:
            raise ValueError("mask_source='seg' but this image has no segmentation; use 'boxes'")
        return obj
    return box
