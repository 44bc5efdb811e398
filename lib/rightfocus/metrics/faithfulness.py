"""Faithfulness by deletion and insertion (Petsiuk et al., BMVC 2018, "RISE"; the deletion curve is
Bach et al.'s pixel flipping, PLOS ONE 2015): pixels are removed (deletion) or restored (insertion)
in order of decreasing attribution, a few per step, and the target class's softmax probability is
recorded after each step. A faithful map makes the deletion curve fall fast (low AUC) and the
insertion curve rise fast (high AUC).

A removed pixel takes the image's minimum value in every channel (Quantus 0.6.0's "black" baseline
of PixelFlipping); insertion starts from the all-baseline image. The curve holds the probability
after every step (not the unperturbed start), and `curve_auc` is the trapezoid area with unit spacing
(Quantus's ``return_auc_per_sample``); divide by ``steps - 1`` for the area on [0, 1]. Ties in the
order are broken by pixel position (stable sort).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


@torch.no_grad()
def perturbation_curve(model: nn.Module, images: Tensor, targets: Tensor, maps: Tensor,
                       pixels_per_step: int = 1, mode: str = "deletion") -> Tensor:
    """Target-class softmax probability after each step [N, ceil(H*W / pixels_per_step)].
    `images` [N, C, H, W], `maps` [N, H, W], `targets` [N] class indices."""
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    n, c, h, w = images.shape
    if maps.shape != (n, h, w):
        raise ValueError(f"maps must be [N, H, W] = {(n, h, w)} like the images, got {tuple(maps.shape)}")
    if pixels_per_step < 1:
        raise ValueError(f"pixels_per_step must be >= 1, got {pixels_per_step}")
    order = torch.sort(maps.reshape(n, -1), dim=1, descending=True, stable=True).indices
    baseline = images.reshape(n, -1).amin(1)[:, None, None]
    flat = images.reshape(n, c, h * w)
    current = flat.clone() if mode == "deletion" else baseline.expand(n, c, h * w).clone()
    source = baseline.expand(n, c, h * w) if mode == "deletion" else flat
    steps = math.ceil(h * w / pixels_per_step)
    rows = torch.arange(n, device=images.device)[:, None]
    curve = []
    for s in range(steps):
        idx = order[:, s * pixels_per_step:(s + 1) * pixels_per_step]
        for ch in range(c):
            current[:, ch][rows, idx] = source[:, ch][rows, idx]
        probs = torch.softmax(model(current.reshape(n, c, h, w)), dim=1)
        curve.append(probs[torch.arange(n), targets])
    return torch.stack(curve, 1)


def curve_auc(curve: Tensor) -> Tensor:
    """Trapezoid area of each curve [N, S] with unit spacing -> [N]."""
    if curve.shape[1] < 2:
        return torch.zeros(curve.shape[0], dtype=curve.dtype, device=curve.device)
    return ((curve[:, 1:] + curve[:, :-1]) / 2).sum(1)


def deletion_insertion(model: nn.Module, images: Tensor, targets: Tensor, maps: Tensor,
                       pixels_per_step: int = 1) -> dict[str, Tensor]:
    """Deletion and insertion AUC on [0, 1] (area / (steps - 1)) per image: {"deletion", "insertion"}."""
    out = {}
    for mode in ("deletion", "insertion"):
        curve = perturbation_curve(model, images, targets, maps, pixels_per_step, mode)
        out[mode] = curve_auc(curve) / max(curve.shape[1] - 1, 1)
    return out
