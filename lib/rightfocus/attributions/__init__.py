"""Differentiable attributions at any tap (Rao et al. 2023, Sec. 3.2) and evaluation-only guided ones.

- `rightfocus.attributions.methods`: the methods as registered objects (``ATTRIBUTION_METHODS``; one
  file per method); `METHODS` and `TAP_METHODS` are views of that registry.
- `attribution_from_tap`: from the logits and a tap's activation of ONE forward pass (training step);
  run the forward and it inside `attribution_context(model, method)`.
- `attribute`: convenience entry point, model + images -> maps at input (or tap) resolution.
- `attribute_all_classes`: every (image, ground-truth class) pair at once (evaluation).
- `LayerTap` / `layer_maps` (`layer.py`): the same maps at any layer of ANY nn.Module (forward hook,
  ViT tokens, math attention); `rightfocus.Guide` builds on them.
"""

from rightfocus.attributions.all_classes import STRATEGIES, attribute_all_classes, positive_pairs
from rightfocus.attributions.attribute import attribute, upsample_maps
from rightfocus.attributions.from_tap import attribution_from_tap
from rightfocus.attributions.guided import guided_rule
from rightfocus.attributions.layer import LayerTap, layer_maps, method_context
from rightfocus.attributions.methods import (
    ATTRIBUTION_METHODS, METHODS, TAP_METHODS, AttributionMethod, attribution_context, is_bias_free, register_method,
)

__all__ = [
    "ATTRIBUTION_METHODS",
    "AttributionMethod",
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
    "register_method",
    "upsample_maps",
]
