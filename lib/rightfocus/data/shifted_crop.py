"""Shifted-center crops for the center-bias test (AIM, Alshami et al. 2025, App. A.6, Fig. 10).

Instead of a center crop, each test image is cropped around a centre displaced from the image centre
by ``offset`` (a fraction of the image's shorter side) in one of four directions (up, right, down,
left), chosen at random per image but reproducibly (seeded by the seed and the image index). The
crop is the largest square that fits around every one of the four displaced centres,
``side = min(H, W) - 2 * d`` with ``d = round(offset * min(H, W))``, and is resized back to the
image's size. Boxes and the segmentation follow the crop (they are read for EPG).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from rightfocus.data.transforms import resized_crop

#: (dx, dy) unit displacements: up, right, down, left (image y grows downwards)
DIRECTIONS: tuple[tuple[int, int], ...] = ((0, -1), (1, 0), (0, 1), (-1, 0))


def shifted_window(height: int, width: int, offset: float, direction: int) -> tuple[int, int, int, int]:
    """The crop window ``(top, left, side, side)`` whose centre is the centred square crop's centre
    moved by ``d = round(offset * min(H, W))`` pixels along ``DIRECTIONS[direction]``."""
    if not 0.0 <= offset < 0.5:
        raise ValueError(f"shifted-center offset must be in [0, 0.5) of the shorter side, got {offset}")
    if direction not in range(len(DIRECTIONS)):
        raise ValueError(f"direction must be 0..3 (up, right, down, left), got {direction}")
    short = min(height, width)
    d = int(round(offset * short))
    side = short - 2 * d
    if side < 1:
        raise ValueError(f"offset {offset} leaves no crop of a {height}x{width} image; use a smaller offset")
    dx, dy = DIRECTIONS[direction]
    top = (height - side) // 2 + dy * d
    left = (width - side) // 2 + dx * d
    return top, left, side, side


def direction_for(index: int, seed: int = 0) -> int:
    """The random (but reproducible) direction of image `index`."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(index))
    return int(torch.randint(len(DIRECTIONS), (1,), generator=gen))


def shifted_center_crop(sample: dict[str, Any], offset: float, direction: int) -> dict[str, Any]:
    """A copy of a dataset sample cropped around the shifted centre and resized back to its size."""
    image = sample["image"]
    h, w = image.shape[-2:]
    top, left, side, _ = shifted_window(h, w, offset, direction)
    boxes = sample.get("boxes", torch.zeros(0, 5))
    image, boxes, seg = resized_crop(image, boxes.float(), sample.get("seg"), top, left, side, side, (h, w))
    out = dict(sample)
    out["image"] = image.clamp(0, 1) if image.is_floating_point() else image
    if boxes.numel():
        boxes = boxes.clone()
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clamp(0, w)
        boxes[:, [2, 4]] = boxes[:, [2, 4]].clamp(0, h)
    out["boxes"] = boxes
    if seg is not None:
        out["seg"] = seg
    out["shift_direction"] = direction
    return out


class ShiftedCenterCrop(Dataset):
    """Wrap a dataset so that every sample is a shifted-center crop (App. A.6)."""

    def __init__(self, dataset: Dataset, offset: float, seed: int = 0) -> None:
        self.dataset, self.offset, self.seed = dataset, float(offset), int(seed)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = self.dataset[i]
        index = int(sample.get("index", i))
        return shifted_center_crop(sample, self.offset, direction_for(index, self.seed))
