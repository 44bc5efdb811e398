"""Box utilities: rounding, clipping, dilation and box -> mask conversion.

Boxes are float tensors [n, 5] with rows (class, x0, y0, x1, y1) in pixels, end exclusive, so the box
covers ``mask[y0:y1, x0:x1]`` (Rao et al. 2023, Sec. 3.4: the guidance mask of class k is the union of
its boxes; the reference code builds it exactly this way).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

#: "truncate": int() of the scaled coordinates, as the MG reference code does;
#: "outward": floor(x0, y0), ceil(x1, y1) so that a resized box never loses object pixels.
BOX_ROUNDING = ("truncate", "outward")


def empty_boxes() -> Tensor:
    """An image without objects: a float tensor of shape [0, 5]."""
    return torch.zeros((0, 5), dtype=torch.float32)


def as_boxes(boxes: Tensor | np.ndarray | Sequence[Sequence[float]]) -> Tensor:
    """Boxes as a float32 tensor [n, 5]; raises on any other shape."""
    t = torch.as_tensor(np.asarray(boxes, dtype=np.float32) if not isinstance(boxes, Tensor) else boxes,
                        dtype=torch.float32)
    if t.numel() == 0:
        return empty_boxes()
    if t.ndim != 2 or t.shape[1] != 5:
        raise ValueError(f"boxes must have shape [n, 5] (class, x0, y0, x1, y1), got {tuple(t.shape)}")
    return t


def round_boxes(boxes: Tensor, mode: str = "truncate") -> Tensor:
    """Round box coordinates to whole pixels (see `BOX_ROUNDING`)."""
    if mode not in BOX_ROUNDING:
        raise ValueError(f"unknown box rounding {mode!r}; use one of {BOX_ROUNDING}")
    out = boxes.clone()
    if mode == "truncate":
        out[:, 1:] = torch.trunc(out[:, 1:])
    else:
        out[:, 1:3] = torch.floor(out[:, 1:3])
        # a tiny epsilon keeps exact integers (e.g. 12.000001 from float error) from growing a pixel
        out[:, 3:5] = torch.ceil(out[:, 3:5] - 1e-4)
    return out


def clip_boxes(boxes: Tensor, width: int, height: int) -> tuple[Tensor, int]:
    """Clamp boxes to the image [0, width] x [0, height]; returns the boxes and how many were changed.
    Boxes left with no area are dropped (they lie entirely outside the image)."""
    if boxes.numel() == 0:
        return empty_boxes(), 0
    out = boxes.clone()
    out[:, 1].clamp_(0, width)
    out[:, 3].clamp_(0, width)
    out[:, 2].clamp_(0, height)
    out[:, 4].clamp_(0, height)
    changed = int((out[:, 1:] != boxes[:, 1:]).any(dim=1).sum())
    keep = (out[:, 3] > out[:, 1]) & (out[:, 4] > out[:, 2])
    return out[keep], changed


def dilate_boxes(boxes: Tensor, p: float, size: tuple[int, int]) -> Tensor:
    """Coarse annotations (Rao et al. 2023, Sec. 5.3 / R8): grow each box by int(p*w) left and right
    and int(p*h) top and bottom, w and h being the BOX's width and height; clamped to `size` = (H, W)."""
    if p < 0:
        raise ValueError(f"dilation must be >= 0 (a fraction such as 0.1, 0.25, 0.5), got {p}")
    boxes = as_boxes(boxes)
    if p == 0 or boxes.numel() == 0:
        return boxes.clone()
    h_img, w_img = size
    out = boxes.clone()
    dw = torch.trunc(p * (boxes[:, 3] - boxes[:, 1]))
    dh = torch.trunc(p * (boxes[:, 4] - boxes[:, 2]))
    out[:, 1] = (boxes[:, 1] - dw).clamp(0, w_img)
    out[:, 3] = (boxes[:, 3] + dw).clamp(0, w_img)
    out[:, 2] = (boxes[:, 2] - dh).clamp(0, h_img)
    out[:, 4] = (boxes[:, 4] + dh).clamp(0, h_img)
    return out


def _union(boxes: Tensor, cls: int | None, size: tuple[int, int]) -> Tensor:
    h, w = size
    mask = torch.zeros((h, w), dtype=torch.float32)
    for c, x0, y0, x1, y1 in boxes.tolist():
        if cls is None or int(c) == cls:
            mask[max(int(y0), 0):max(int(y1), 0), max(int(x0), 0):max(int(x1), 0)] = 1.0
    return mask


def class_masks(boxes: Tensor | Sequence[Tensor], num_classes: int, size: tuple[int, int],
                invert: bool = False) -> Tensor:
    """Per-class union-of-boxes masks: float [K, H, W] for one image's boxes [n, 5], or [N, K, H, W]
    for a list of them (as `collate` returns). `invert` gives the complement (Waterbirds reversed
    task: guide to everything outside the box)."""
    if not isinstance(boxes, Tensor):
        return torch.stack([class_masks(b, num_classes, size, invert) for b in boxes]) if len(boxes) else \
            torch.zeros((0, num_classes, *size))
    boxes = as_boxes(boxes)
    out = torch.stack([_union(boxes, k, size) for k in range(num_classes)]) if num_classes else \
        torch.zeros((0, *size))
    return 1.0 - out if invert else out


def boxes_to_masks(boxes: Sequence[Tensor] | Tensor, classes: Tensor | Sequence[int] | int,
                   size: tuple[int, int], invert: bool | Tensor | Sequence[bool] = False) -> Tensor:
    """Union-of-boxes guidance masks for (image, class) pairs (Rao et al. 2023, Sec. 3.4).

    boxes: a list of N tensors [n_i, 5] (one per image, as `collate` returns them), or one tensor [n, 5]
    with `classes` an int (then the result is [H, W]). classes: the class to mask per image, [N].
    size: (H, W). invert: per image (or one for all), take the complement (mask outside the boxes).
    Returns float [N, H, W] (or [H, W]) with 1 inside any box of that class.
    """
    if isinstance(boxes, Tensor) and boxes.ndim == 2:
        if not isinstance(classes, int):
            raise ValueError("for one image's boxes [n, 5] pass `classes` as one int")
        m = _union(as_boxes(boxes), classes, size)
        return 1.0 - m if bool(invert) else m
    classes_t = torch.as_tensor(classes).reshape(-1)
    if len(boxes) != len(classes_t):
        raise ValueError(f"got {len(boxes)} box sets but {len(classes_t)} classes; pass one class per image")
    inv = torch.as_tensor(invert, dtype=torch.bool).reshape(-1)
    if inv.numel() == 1:
        inv = inv.expand(len(classes_t))
    masks = [_union(as_boxes(b), int(c), size) for b, c in zip(boxes, classes_t.tolist())]
    out = torch.stack(masks) if masks else torch.zeros((0, *size))
    return torch.where(inv[:, None, None], 1.0 - out, out)
