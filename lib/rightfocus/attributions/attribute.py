"""`attribute`: the convenience entry point (one call: model, images, targets -> maps).

Dispatches through the registry (`rightfocus.attributions.methods`): every method's own
`AttributionMethod.attribute` (single pass for ixg / gradcam / bcos and intgrad on X-DNNs, the right
Riemann sum for intgrad elsewhere, the guided rule for guided_backprop / guided_gradcam).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rightfocus.attributions.gradients import input_leaf as _input_leaf
from rightfocus.attributions.gradients import upsample_maps
from rightfocus.attributions.methods import METHODS, attribution_context, get_method
from rightfocus.models.taps import TappedModel

__all__ = ["METHODS", "attribute", "upsample_maps"]


def _check_layer(model: TappedModel, layer: str) -> None:
    taps = getattr(model, "taps", None)
    if taps is None:
        raise TypeError(f"{type(model).__name__} is not a TappedModel (no .taps / .forward_taps); for any "
                        "nn.Module use rightfocus.Guide(model, layer=<module name>, method=...).attribute(...)")
    if layer not in taps:
        raise ValueError(f"unknown layer {layer!r}; this model has taps {list(taps)}")


def _attribute_any(model: torch.nn.Module, images: Tensor, targets: Tensor, method: str, layer: str,
                   create_graph: bool, upsample: bool) -> Tensor:
    """Any nn.Module (not a TappedModel): the single-pass maps of `rightfocus.attributions.layer`
    (`layer` a module name or ``input``; a method not exact on the model is warned about)."""
    from rightfocus.attributions.layer import LayerTap, layer_maps

    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    tap = LayerTap(model, layer)
    with torch.enable_grad(), attribution_context(model, method, strict=False):
        logits, act = tap.forward(images)
        maps = layer_maps(logits, act, targets, method, images.shape[-2:], create_graph, tap.prefix_tokens,
                          f"layer {layer!r}")
    return upsample_maps(maps, images.shape[-2:]) if upsample else maps


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
        nn.Module works for the single-pass methods with `layer` a module name (see
        `rightfocus.Guide`, which builds on the same code).
    method : a registered method (`METHODS`): ixg | intgrad | gradcam | bcos | guided_backprop |
        guided_gradcam, and any added one. ``intgrad`` is exact single-pass IxG on X-DNNs and a right
        Riemann sum over `steps` points otherwise (captum's riemann_right, batched). ``guided_backprop``
        is at the input, summed over channels. ``guided_gradcam`` is sum_c guided_c * GradCAM(`layer`)
        bilinearly upsampled (captum's GuidedGradCam, summed over channels).
    layer : the tap to attribute at (``input``, ``mid1`` .. ``final``).
    create_graph : keep the map differentiable w.r.t. the parameters (guidance).
    upsample : bilinearly upsample the tap's map to the input size; ``False`` returns it at the tap's
        resolution (what the localisation losses take).
    """
    m = get_method(method)
    if not isinstance(model, TappedModel) and m.single_pass:
        return _attribute_any(model, images, targets, method, layer, create_graph, upsample)
    _check_layer(model, layer)
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    if create_graph and not m.differentiable:
        raise ValueError(f"{method} is for evaluation only; call it with create_graph=False")
    m.check_tap(layer)
    with torch.enable_grad():  # attributions are gradients, also when called under torch.no_grad()
        maps = m.attribute(model, images, targets, layer, create_graph=create_graph, steps=steps)
    return upsample_maps(maps, images.shape[-2:]) if upsample else maps
