"""Differentiable attributions at any tap (Rao et al. 2023, Sec. 3.2) and evaluation-only guided ones.

- `attribution_from_tap`: from the logits and a tap's activation of ONE forward pass (training step);
  run the forward and it inside `attribution_context(model, method)`.
- `attribute`: convenience entry point, model + images -> maps at input (or tap) resolution.
- `attribute_all_classes`: every (image, ground-truth class) pair at once (evaluation).
"""

from rightfocus.attributions.all_classes import STRATEGIES, attribute_all_classes, positive_pairs
from rightfocus.attributions.attribute import METHODS, attribute, upsample_maps
from rightfocus.attributions.from_tap import TAP_METHODS, attribution_context, attribution_from_tap
from rightfocus.attributions.guided import guided_rule

__all__ = [
    "METHODS",
    "STRATEGIES",
    "TAP_METHODS",
    "attribute",
    "attribute_all_classes",
    "attribution_context",
    "attribution_from_tap",
    "guided_rule",
    "positive_pairs",
    "upsample_maps",
]
