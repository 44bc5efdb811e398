"""AIM's binary masks as the inspector shows them (AIM Figs. 6-7): per stage ("S<l>", top stage first)
and merged, at image resolution, from a checkpoint's forward pass or from the masks the AIM loop
stored per epoch for fixed test images."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rightfocus.runs import store


def from_model(model: torch.nn.Module, encoded: Tensor) -> tuple[dict[str, Tensor], Tensor | None]:
    """(stage masks, merged mask or None) of one encoded image [1, 3, H, W]: `forward_aim` in eval mode
    (no Gumbel noise, hard threshold)."""
    with torch.no_grad():
        out = model.forward_aim(encoded)
    stages = {f"S{k}": v[0] for k, v in out.masks.items()}
    return stages, (out.merged_mask[0] if out.merged_mask is not None else None)


def stored(path: Path, positions: Sequence[int], index: int) -> tuple[dict[str, Tensor], Tensor | None]:
    """(stage masks, merged mask or None) of test image `index` from one epoch's stored masks
    (``masks/epoch_<e>.pt``: ``stage_masks`` top stage first, ``stages``, ``merged``; one row per
    position of ``masks/images.pt``)."""
    blob = store.load_torch(path)
    row = list(positions).index(index)
    stages = {f"S{k}": torch.as_tensor(m)[row] for k, m in zip(blob["stages"], blob["stage_masks"])}
    merged = blob.get("merged")
    return stages, (torch.as_tensor(merged)[row] if merged is not None else None)


def at_image_size(stages: dict[str, Tensor], merged: Tensor | None, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Masks upsampled (nearest) to `size`; the merged mask (0..number of masks) scaled to [0, 1]."""
    result = {name: F.interpolate(m[None].float(), size=size, mode="nearest")[0, 0].numpy()
              for name, m in stages.items()}
    if merged is not None:
        merged = F.interpolate(merged[None].float(), size=size, mode="nearest")[0, 0]
        top = float(merged.max())
        result["merged"] = (merged / top if top > 0 else merged).numpy()
    return result
