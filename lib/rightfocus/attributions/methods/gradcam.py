"""GradCAM (``gradcam``, Selvaraju et al. 2017): ReLU(sum_c mean_hw(grad_c) * act_c) at a layer,
differentiable for guidance (Rao et al. 2023, Sec. 3.2); shown for every model kind at the final tap."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rightfocus.attributions.methods.base import AttributionMethod, register_method

if TYPE_CHECKING:
    from torch import Tensor


@register_method
class GradCAM(AttributionMethod):
    name = "gradcam"
    label = "GradCAM"
    eval_tap = "final"
    every_kind = True

    def combine(self, grad: "Tensor", activation: "Tensor") -> "Tensor":
        weights = grad.mean(dim=(2, 3), keepdim=True)
        return (weights * activation).sum(1).relu()
