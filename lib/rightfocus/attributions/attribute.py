"""`attribute`: the convenience entry point (one call: model, images, targets -> maps).

Built on `attribution_from_tap` for the methods a training step uses (ixg, intgrad on X-DNN, gradcam,
bcos); adds the evaluation-only methods: IntGrad on models that are not X-DNNs (right Riemann sum,
batched over the path), Guided Backprop and Guided GradCAM (`guided.py`, ReLU and GELU rules).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from rightfocus.attributions.from_tap import TAP_METHODS, attribution_context, attribution_from_tap, select_logits
from rightfocus.attributions.guided import guided_rule
from rightfocus.models.taps import TappedModel

#: every method `attribute` accepts; the last two are for evaluation only (no create_graph use)
METHODS: tuple[str, ...] = (*TAP_METHODS, "guided_backprop", "guided_gradcam")

#: images per forward pass of the IntGrad path (the path's alphas are batched up to this size)
_PATH_BATCH = 256


def upsample_maps(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear upsampling [N, h, w] -> [N, H, W] (``F.interpolate``, default align_corners), as the
    reference code and captum's ``LayerAttribution.interpolate`` do."""
    size = tuple(int(s) for s in size)
    if tuple(maps.shape[-2:]) == size:
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear")[:, 0]


def _input_leaf(images: Tensor) -> Tensor:
    """The images as a tensor whose gradient autograd can return (the caller's tensor is untouched)."""
    return images if images.requires_grad else images.detach().requires_grad_(True)


def _check_layer(model: TappedModel, layer: str) -> None:
    taps = getattr(model, "taps", None)
    if taps is None:
        raise TypeError(f"{type(model).__name__} is not a TappedModel (no .taps / .forward_taps); for any "
                        "nn.Module use rightfocus.Guide(model, layer=<module name>, method=...).attribute(...)")
    if layer not in taps:
        raise ValueError(f"unknown layer {layer!r}; this model has taps {list(taps)}")


def _forward_from(model: TappedModel, layer: str, h: Tensor) -> Tensor:
    """Logits from the activation at `layer` (the stages after it, then the head)."""
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


def _attribute_any(model: torch.nn.Module, images: Tensor, targets: Tensor, method: str, layer: str,
                   create_graph: bool, upsample: bool) -> Tensor:
    """Any nn.Module (not a TappedModel): the single-pass maps of `rightfocus.attributions.layer`
    (`layer` a module name or ``input``; ``intgrad`` = IxG, exact on bias-free models, warned otherwise)."""
    from rightfocus.attributions.layer import LayerTap, layer_maps, method_context, warn_if_not_exact

    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    warn_if_not_exact(model, method)
    tap = LayerTap(model, layer)
    with torch.enable_grad(), method_context(model, method):
        logits, act = tap.forward(images)
        maps = layer_maps(logits, act, targets, method, images.shape[-2:], create_graph, tap.prefix_tokens,
                          f"layer {layer!r}")
    return upsample_maps(maps, images.shape[-2:]) if upsample else maps


def _right_riemann(steps: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Alphas 1/steps .. 1 and equal weights 1/steps (captum's ``method="riemann_right"``); the zero
    baseline itself (alpha = 0) is never evaluated."""
    if steps < 1:
        raise ValueError(f"intgrad needs steps >= 1, got {steps}")
    alphas = torch.arange(1, steps + 1, dtype=like.dtype, device=like.device) / steps
    return alphas, torch.full((steps,), 1.0 / steps, dtype=like.dtype, device=like.device)


def _integrated_gradients(
    model: TappedModel, images: Tensor, targets: Tensor, layer: str, steps: int, create_graph: bool
) -> Tensor:
    """IntGrad with a zero baseline at `layer` by the right Riemann sum over `steps` points of the path
    (captum's ``method="riemann_right"``; captum's trapezoid weights sum to (n-1)/n, so not that one),
    the path's points batched; summed over channels."""
    with torch.no_grad() if not create_graph else torch.enable_grad():
        _, acts = model.forward_taps(images, [layer])
    act = acts[layer]
    n = act.shape[0]
    alphas, weights = _right_riemann(steps, act)
    targets = torch.as_tensor(targets, device=act.device).long().reshape(-1)
    total = torch.zeros_like(act)
    per_pass = max(1, _PATH_BATCH // max(n, 1))
    for start in range(0, steps, per_pass):
        a = alphas[start : start + per_pass]
        w = weights[start : start + per_pass]
        path = (a[:, None, None, None, None] * act[None]).reshape(-1, *act.shape[1:])
        if not path.requires_grad:
            path.requires_grad_(True)
        logits = _forward_from(model, layer, path)
        (grad,) = torch.autograd.grad(select_logits(logits, targets.repeat(len(a))), path, create_graph=create_graph)
        total = total + (w[:, None, None, None, None] * grad.reshape(len(a), *act.shape)).sum(0)
    return (total * act).sum(1)


def _guided_backprop(model: TappedModel, images: Tensor, targets: Tensor) -> Tensor:
    """Guided gradient w.r.t. the input, [N, C, H, W]."""
    x = _input_leaf(images)
    with torch.enable_grad(), guided_rule(model):
        logits = model(x)
        (grad,) = torch.autograd.grad(select_logits(logits, targets), x)
    return grad


def attribute(
    model: TappedModel,
    images: Tensor,
    targets: Tensor,
    method: str,
    layer: str = "input",
    create_graph: bool = False,
    upsample: bool = True,
    steps: int = 32,
) -> Tensor:
    """Attribution maps [N, H, W] for class ``targets[i]`` of image i (Rao et al. 2023, Sec. 3.2).

    Parameters
    ----------
    model : a TappedModel; `images` must already be encoded for it (`model.input_encoding`). Any other
        nn.Module works for ixg / intgrad / gradcam / bcos with `layer` a module name (see
        `rightfocus.Guide`, which builds on the same code).
    method : ixg | intgrad | gradcam | bcos | guided_backprop | guided_gradcam.
        ``intgrad`` is exact single-pass IxG on X-DNNs and a right Riemann sum over `steps` points
        otherwise (captum's riemann_right, batched). ``guided_backprop`` is at the input, summed over
        channels. ``guided_gradcam`` is sum_c guided_c * GradCAM(`layer`) bilinearly upsampled
        (captum's GuidedGradCam, summed over channels).
    layer : the tap to attribute at (``input``, ``mid1`` .. ``final``).
    create_graph : keep the map differentiable w.r.t. the parameters (guidance).
    upsample : bilinearly upsample the tap's map to the input size; ``False`` returns it at the tap's
        resolution (what the localisation losses take).
    """
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {list(METHODS)}")
    if not isinstance(model, TappedModel) and method in TAP_METHODS:
        return _attribute_any(model, images, targets, method, layer, create_graph, upsample)
    _check_layer(model, layer)
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    size = images.shape[-2:]
    if method in ("guided_backprop", "guided_gradcam"):
        if create_graph:
            raise ValueError(f"{method} is for evaluation only; call it with create_graph=False")
        if method == "guided_backprop":
            if layer != "input":
                raise ValueError("guided_backprop is defined at the input; call it with layer='input'")
            return _guided_backprop(model, images, targets).sum(1)
        if layer == "input":
            raise ValueError("guided_gradcam needs a GradCAM layer; call it with e.g. layer='final'")
        cam = upsample_maps(attribute(model, images, targets, "gradcam", layer), size)
        return (_guided_backprop(model, images, targets) * cam[:, None]).sum(1)
    with torch.enable_grad():  # attributions are gradients, also when called under torch.no_grad()
        if method == "intgrad" and getattr(model, "kind", "vanilla") != "xdnn":
            maps = _integrated_gradients(model, images, targets, layer, steps, create_graph)
        else:
            x = _input_leaf(images) if layer == "input" else images
            with attribution_context(model, method):
                logits, acts = model.forward_taps(x, [layer])
                maps = attribution_from_tap(logits, acts[layer], targets, method, create_graph=create_graph)
    return upsample_maps(maps, size) if upsample else maps
