"""The one collate function for every dataset's samples."""

from __future__ import annotations

from typing import Any, Sequence

#: value given to the segmentation of samples in a batch that have none (ignored by every metric)
SEG_VOID = 255


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples: stacks ``image`` [N, 3, H, W] and ``labels`` [N, K]; keeps ``boxes`` as a list of
    [n_i, 5] tensors; ``has_boxes`` / ``invert_mask`` bool [N]; ``index`` and ``group`` / ``place``
    long [N] where every sample has them. ``seg`` is stacked [N, H, W] when ANY sample has one; samples
    without are filled with 255 (void), so `batch["seg"] == 255` marks "no segmentation" and metrics
    that ignore void pixels ignore them whole. Raises when image sizes differ (set `size`)."""
    import torch  # here, so that `rightfocus.data` (which re-exports this function) imports without torch

    if not samples:
        raise ValueError("collate got an empty list of samples")
    shapes = {tuple(s["image"].shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(f"cannot batch images of different sizes {sorted(shapes)}; pass size=... to "
                         "load_dataset so that every image is resized to one size")
    batch: dict[str, Any] = {
        "image": torch.stack([s["image"] for s in samples]),
        "labels": torch.stack([s["labels"] for s in samples]),
        "boxes": [s["boxes"] for s in samples],
        "has_boxes": torch.tensor([bool(s.get("has_boxes", True)) for s in samples]),
        "invert_mask": torch.tensor([bool(s.get("invert_mask", False)) for s in samples]),
    }
    for key in ("index", "group", "place"):
        if all(key in s for s in samples):
            batch[key] = torch.tensor([int(s[key]) for s in samples], dtype=torch.long)
    if any("seg" in s for s in samples):
        h, w = samples[0]["image"].shape[-2:]
        void = torch.full((h, w), SEG_VOID, dtype=torch.long)
        batch["seg"] = torch.stack([s["seg"] if "seg" in s else void for s in samples])
    return batch
