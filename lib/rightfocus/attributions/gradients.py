"""The gradient every attribution starts from: d sum_i logits[i, targets[i]] / d activation.

Shared by the attribution methods (`rightfocus.attributions.methods`): selecting the target logits,
differentiating them w.r.t. a tap's activation, the input as a leaf tensor, the bilinear upsampling of
maps to the input size, and the double-differentiable attention kernel.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def select_logits(logits: Tensor, targets: Tensor) -> Tensor:
    """Sum over the batch of ``logits[i, targets[i]]``: one backward gives every image's gradient."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be [N, K], got shape {tuple(logits.shape)}")
    targets = torch.as_tensor(targets, device=logits.device).long().reshape(-1)
    if targets.numel() != logits.shape[0]:
        raise ValueError(f"need one target per image: {targets.numel()} targets for {logits.shape[0]} images")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
        raise ValueError(f"targets must lie in [0, {logits.shape[1]}), got {targets.tolist()}")
    return logits.gather(1, targets[:, None]).sum()


def tap_gradient(logits: Tensor, activation: Tensor, targets: Tensor, create_graph: bool = False) -> Tensor:
    """Gradient of ``sum_i logits[i, targets[i]]`` w.r.t. a tap's activation [N, C, h, w] (one backward
    for the whole batch); `activation` must be in the graph of `logits`."""
    if activation.dim() != 4:
        raise ValueError(f"activation must be [N, C, h, w], got shape {tuple(activation.shape)}")
    if not activation.requires_grad:
        raise ValueError(
            "the tap's activation does not require grad: for the 'input' tap call "
            "images.requires_grad_(True) before the forward pass"
        )
    (grad,) = torch.autograd.grad(select_logits(logits, targets), activation, create_graph=create_graph)
    return grad


def input_leaf(images: Tensor) -> Tensor:
    """The images as a tensor whose gradient autograd can return (the caller's tensor is untouched)."""
    return images if images.requires_grad else images.detach().requires_grad_(True)


def upsample_maps(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear upsampling [N, h, w] -> [N, H, W] (``F.interpolate``, default align_corners), as the
    reference code and captum's ``LayerAttribution.interpolate`` do."""
    size = tuple(int(s) for s in size)
    if tuple(maps.shape[-2:]) == size:
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear")[:, 0]


def sdpa_math() -> ContextManager:
    """Scaled-dot-product attention through the explicit math path (double-differentiable; the fused
    kernels have no double backward)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3: no kernel switch (and no fused CPU kernel either)
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.MATH])
