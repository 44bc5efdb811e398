"""Differentiable attributions at any tap (Rao et al. 2023, Sec. 3.2) and evaluation-only guided ones.

- `attribution_from_tap`: from the logits and a tap's activation of ONE forward pass (training step);
  run the forward and it inside `attribution_context(model, method)`.
- `attribute`: convenience entry point, model + images -> maps at input (or tap) resolution.
- `attribute_all_classes`: every (image, ground-truth class) pair at once (evaluation).
- `LayerTap` / `layer_maps` (`layer.py`): the same maps at any layer of ANY nn.Module (forward hook,
  ViT tokens, math attention); `rightfocus.Guide` builds on them.
"""

from rightfocus.attributions.all_classes import STRATEGIES, attribute_all_classes, positive_pairs
from rightfocus.attributions.attribute import METHODS, attribute, upsample_maps
from rightfocus.attributions.from_tap import TAP_METHODS, attribution_context, attribution_from_tap
from rightfocus.attributions.guided import guided_rule
from rightfocus.attributions.layer import LayerTap, is_bias_free, layer_maps, method_context

__all__ = [
    "LayerTap",
    "METHODS",
    "STRATEGIES",
    "TAP_METHODS",
    "attribute",
    "attribute_all_classes",
    "attribution_context",
    "attribution_from_tap",
    "guided_rule",
    "is_bias_free",
    "layer_maps",
    "method_context",
    "positive_pairs",
    "upsample_maps",
]
