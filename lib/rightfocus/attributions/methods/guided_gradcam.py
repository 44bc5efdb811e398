"""Guided GradCAM (``guided_gradcam``, Selvaraju et al. 2017): sum_c guided_c * GradCAM(layer)
bilinearly upsampled (captum's GuidedGradCam, summed over channels); for evaluation only."""

from __future__ import annotations

from typing import ContextManager

from torch import Tensor, nn

from rightfocus.attributions.gradients import upsample_maps
from rightfocus.attributions.guided import guided_rule
from rightfocus.attributions.methods.base import NEEDS_LAYER, AttributionMethod, get_method, register_method
from rightfocus.attributions.methods.guided_backprop import guided_gradient


@register_method
class GuidedGradCAM(AttributionMethod):
    name = "guided_gradcam"
    label = "Guided GradCAM"
    single_pass = False
    differentiable = False
    taps = NEEDS_LAYER
    eval_tap = "final"

    def context(self, model: nn.Module) -> ContextManager:
        return guided_rule(model)

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor, layer: str = "final",
                  create_graph: bool = False, steps: int = 32) -> Tensor:
        cam = upsample_maps(get_method("gradcam").attribute(model, images, targets, layer), images.shape[-2:])
        return (guided_gradient(model, images, targets) * cam[:, None]).sum(1)
