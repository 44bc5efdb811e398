"""Attributions for EVERY ground-truth class of every image (evaluation, Rao et al. 2023 Sec. 3.3).

The reference evaluation attributes each (image, ground-truth class) pair; EPG and IoU are averaged
flat over the pairs. Strategies, all equal to the per-pair loop (tests check it):

- ``per_rank``: one forward pass, then one backward pass per rank j = 0..k_max-1 (the j-th positive
  class of every image at once, graph retained). Forward cost 1x, backward cost k_max x.
- ``repeat``: repeat each image once per positive class and attribute the P pairs as one batch.
  Forward and backward cost P/N x each. The only strategy for path / guided methods.
- ``vmap``: one forward pass, the k_max backward passes batched with ``is_grads_batched``.

``benchmarks/bench_guidance.py`` times them. On CPU (ResNet-18, 64 px, batch 32, 85 pairs, one
thread) the speed-ups over the per-pair loop were repeat 6.3x, per_rank 4.7x, vmap 4.2x: with a few
classes per image, k_max backward passes cost more than repeating the forward, so ``auto`` = ``repeat``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rightfocus.attributions.attribute import _check_layer, _input_leaf, attribute, upsample_maps
from rightfocus.attributions.methods import TAP_METHODS, attribution_context, get_method
from rightfocus.models.taps import TappedModel

STRATEGIES: tuple[str, ...] = ("auto", "per_rank", "repeat", "vmap")


def positive_pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(image_index, class_index) of every positive label, image-major then class order."""
    if labels.dim() != 2:
        raise ValueError(f"labels must be multi-hot [N, K], got shape {tuple(labels.shape)}")
    image_index, class_index = torch.nonzero(labels > 0, as_tuple=True)
    return image_index, class_index


def _single_pass(model: TappedModel, images: Tensor, labels: Tensor, method: str, layer: str, vmap: bool) -> Tensor:
    """Maps [P, h, w] from one forward pass and k_max (or one batched) backward passes."""
    image_index, class_index = positive_pairs(labels)
    positive = (labels > 0).long()
    rank = (positive.cumsum(1) - 1)[image_index, class_index]  # j for the j-th positive class of an image
    k_max = int(rank.max()) + 1 if rank.numel() else 0
    x = _input_leaf(images) if layer == "input" else images
    with torch.enable_grad(), attribution_context(model, method):
        logits, acts = model.forward_taps(x, [layer])
        act = acts[layer]
        seeds = torch.zeros(k_max, *logits.shape, dtype=logits.dtype, device=logits.device)
        seeds[rank, image_index, class_index] = 1.0
        if vmap:
            (grads,) = torch.autograd.grad(logits, act, grad_outputs=seeds, is_grads_batched=True)
        else:
            grads = torch.stack(
                [
                    torch.autograd.grad(logits, act, grad_outputs=seeds[j], retain_graph=j < k_max - 1)[0]
                    for j in range(k_max)
                ]
            )
    # pair p's gradient is grads[rank[p], image_index[p]]
    return get_method(method).combine(grads[rank, image_index], act[image_index].detach())


def attribute_all_classes(
    model: TappedModel,
    images: Tensor,
    labels: Tensor,
    method: str,
    layer: str = "input",
    upsample: bool = True,
    steps: int = 32,
    strategy: str = "auto",
) -> tuple[Tensor, Tensor, Tensor]:
    """Maps for every (image, ground-truth class) pair: ``(maps [P, H, W], image_index [P],
    class_index [P])``, pairs ordered image-major. For evaluation: no graph is kept.

    `labels` is multi-hot [N, K] (> 0 marks a ground-truth class); images without any get no pair.
    `strategy`: see the module docstring (same results, different speed).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    _check_layer(model, layer)
    image_index, class_index = positive_pairs(labels)
    m = get_method(method)
    single_pass = m.single_pass and m.exact_for(model)
    if image_index.numel() == 0:
        h, w = images.shape[-2:] if upsample else model.forward_taps(images, [layer])[1][layer].shape[-2:]
        return images.new_zeros(0, h, w), image_index, class_index
    if strategy == "auto":
        strategy = "repeat"
    if strategy in ("per_rank", "vmap"):
        if not single_pass:
            raise ValueError(f"strategy {strategy!r} needs a single-pass method exact on this model "
                             f"({list(TAP_METHODS)}); use 'repeat'")
        maps = _single_pass(model, images, labels, method, layer, vmap=strategy == "vmap")
        maps = upsample_maps(maps, images.shape[-2:]) if upsample else maps
    else:
        maps = attribute(model, images[image_index], class_index, method, layer, upsample=upsample, steps=steps)
    return maps.detach(), image_index, class_index
