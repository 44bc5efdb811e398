"""Integrated Gradients (``intgrad``, Sundararajan et al. 2017) with a zero baseline; the native
explanation of X-DNNs (Hesse et al. 2021).

The one rule for its exactness lives here: on a bias-free, positively homogeneous network of degree 1
(an X-DNN) IntGrad equals Input x Gradient, so the single-pass map is exact (`IntegratedGradients.exact_for`
= `is_bias_free`). On any other model `attribute` computes the path integral by the right Riemann
sum, and the single-pass map is refused where exactness is required (training, `attribution_context`)
and warned about elsewhere (`rightfocus.Guide`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rightfocus.attributions.gradients import select_logits
from rightfocus.attributions.methods.base import AttributionMethod, register_method

#: images per forward pass of the path (the path's alphas are batched up to this size)
PATH_BATCH = 256

#: leaf module types that keep a network positively homogeneous of degree 1 (with zero biases)
_HOMOGENEOUS: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.ReLU, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d,
)


def is_bias_free(model: nn.Module) -> bool:
    """Whether IxG equals IntGrad with a zero baseline (X-DNN, Hesse et al. 2021): the network is
    positively homogeneous of degree 1. True for rightfocus X-DNNs (kind ``xdnn``); otherwise every leaf
    module must be a conv / linear / ReLU / pooling / identity type, every bias zero except the last
    linear's (a logit bias only shifts f(0)). Functional ops inside ``forward`` are not seen."""
    if getattr(model, "kind", None) == "xdnn":
        return True
    leaves = [m for m in model.modules() if not next(m.children(), None)]
    if any(not isinstance(m, _HOMOGENEOUS) for m in leaves):
        return False
    linears = [m for m in leaves if isinstance(m, nn.Linear)]
    last = linears[-1] if linears else None
    return all(
        m is last or getattr(m, "bias", None) is None or not bool(torch.count_nonzero(m.bias))
        for m in leaves
    )


def right_riemann(steps: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Alphas 1/steps .. 1 and equal weights 1/steps (captum's ``method="riemann_right"``); the zero
    baseline itself (alpha = 0) is never evaluated."""
    if steps < 1:
        raise ValueError(f"intgrad needs steps >= 1, got {steps}")
    alphas = torch.arange(1, steps + 1, dtype=like.dtype, device=like.device) / steps
    return alphas, torch.full((steps,), 1.0 / steps, dtype=like.dtype, device=like.device)


def forward_from(model: nn.Module, layer: str, h: Tensor) -> Tensor:
    """Logits of a `TappedModel` from the activation at `layer` (the stages after it, then the head)."""
    from rightfocus.models.taps import TappedModel

    if layer == "input":
        return model(h)
    if type(model).forward_taps is not TappedModel.forward_taps:
        raise ValueError(
            f"{type(model).__name__} overrides forward_taps, so the network after tap {layer!r} is not "
            "its remaining stages; path attributions (intgrad) work at layer='input' only"
        )
    names = list(model.stages.keys())
    for name in names[names.index(layer) + 1 :]:
        h = model.stages[name](h)
    return model.head(h)


def integrated_gradients(model: nn.Module, images: Tensor, targets: Tensor, layer: str, steps: int,
                         create_graph: bool) -> Tensor:
    """IntGrad with a zero baseline at `layer` by the right Riemann sum over `steps` points of the path
    (captum's ``method="riemann_right"``; captum's trapezoid weights sum to (n-1)/n, so not that one),
    the path's points batched; summed over channels."""
    with torch.no_grad() if not create_graph else torch.enable_grad():
        _, acts = model.forward_taps(images, [layer])
    act = acts[layer]
    n = act.shape[0]
    alphas, weights = right_riemann(steps, act)
    targets = torch.as_tensor(targets, device=act.device).long().reshape(-1)
    total = torch.zeros_like(act)
    per_pass = max(1, PATH_BATCH // max(n, 1))
    for start in range(0, steps, per_pass):
        a = alphas[start : start + per_pass]
        w = weights[start : start + per_pass]
        path = (a[:, None, None, None, None] * act[None]).reshape(-1, *act.shape[1:])
        if not path.requires_grad:
            path.requires_grad_(True)
        logits = forward_from(model, layer, path)
        (grad,) = torch.autograd.grad(select_logits(logits, targets.repeat(len(a))), path, create_graph=create_graph)
        total = total + (w[:, None, None, None, None] * grad.reshape(len(a), *act.shape)).sum(0)
    return (total * act).sum(1)


@register_method
class IntegratedGradients(AttributionMethod):
    name = "intgrad"
    label = "IntGrad"

    def exact_for(self, model: nn.Module) -> bool:
        return is_bias_free(model)

    def not_exact(self, model: nn.Module, strict: bool) -> str:
        if strict:
            return (f"single-pass 'intgrad' is exact only for X-DNN (bias-free) models, got "
                    f"{type(model).__name__} of kind {getattr(model, 'kind', None)!r}; use "
                    "rightfocus.attributions.attribute(..., method='intgrad') for the Riemann sum")
        return (f"{type(model).__name__} is not bias-free (X-DNN), so single-pass 'intgrad' computes "
                "Input x Gradient at the layer (the integrand at alpha = 1), not the path integral; it equals "
                "IntGrad with a zero baseline only for positively homogeneous networks")

    def attribute(self, model: nn.Module, images: Tensor, targets: Tensor, layer: str = "input",
                  create_graph: bool = False, steps: int = 32) -> Tensor:
        """Exact single pass on X-DNNs; the right Riemann sum over `steps` points otherwise."""
        if self.exact_for(model):
            return super().attribute(model, images, targets, layer, create_graph, steps)
        return integrated_gradients(model, images, targets, layer, steps, create_graph)
