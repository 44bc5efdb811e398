"""Guided Backpropagation (``guided_backprop``, Springenberg et al. 2015) at the input, summed over
channels; for evaluation only (the guided rule, `rightfocus.attributions.guided`, ReLU and GELU)."""

from __future__ import annotations

from typing import ContextManager

import torch
from torch import Tensor, nn

from rightfocus.attributions.gradients import input_leaf, select_logits
from rightfocus.attributions.guided import guided_rule
from rightfocus.attributions.methods.base import INPUT_ONLY, AttributionMethod, register_method


def guided_gradient(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """Guided gradient w.r.t. the input, [N, C, H, W]."""
    x = input_leaf(images)
    with torch.enable_grad(), guided_rule(model):
        logits = model(x)
        (grad,) = torch.autograd.grad(select_logits(logits, targets), x)
    return grad


@register_method
class GuidedBackprop(AttributionMethod):
    name = "guided_backprop"
    label = "Guided Backprop"
    single_pass = False
    differentiable = False
    taps = INPUT_ONLY

    def context(self, model: nn.Module) -> ContextManager:
        return guided_rule(model)

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor, layer: str = "input",
                  create_graph: bool = False, steps: int = 32) -> Tensor:
        return guided_gradient(model, images, targets).sum(1)
