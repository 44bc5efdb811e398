"""Input x Gradient (``ixg``): sum over channels of grad * activation at any tap (Rao et al. 2023,
Sec. 3.2); the native explanation of vanilla models."""

from __future__ import annotations

from rightfocus.attributions.methods.base import AttributionMethod, register_method


@register_method
class InputXGradient(AttributionMethod):
    name = "ixg"
    label = "IxG"
