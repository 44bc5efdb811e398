"""B-cos explanations (``bcos``, Boehle et al. 2022): Input x Gradient computed in the model's
explanation mode (the dynamic scales are constants for the explanation's own derivative), the native
explanation of B-cos models.

Both the forward and the gradient run inside the mode (`attribution_context`); the loss's
``backward()`` runs OUTSIDE it: rightfocus B-cos layers read the switch at backward time, so the
guidance gradient is the exact derivative (scales in the graph for the loss's backward).
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Iterator

from torch import nn

from rightfocus.attributions.methods.base import AttributionMethod, register_method


def _has_dynamic_scales(model: nn.Module) -> bool:
    from rightfocus.models.bcos_layers import DynamicScale  # models may import late; keep the edge lazy

    return any(isinstance(m, DynamicScale) for m in model.modules())


def _toggles(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if callable(getattr(m, "set_explanation_mode", None))]


def bcos_mode(model: nn.Module) -> tuple[Callable[[], ContextManager], bool]:
    """(a factory of the model's B-cos explanation-mode context, whether guidance through it is exact).

    rightfocus B-cos models (`rightfocus.models.explanation_mode`) read the switch at backward time,
    so the guidance gradient is exact (checked against finite differences on the first layer's weights). Other models whose modules have
    ``set_explanation_mode`` (the ``bcos`` package, B-cos-v2) detach the dynamic scales in the
    FORWARD pass: maps are exact, gradients through that forward treat the scales as constants.
    """
    if _has_dynamic_scales(model):
        from rightfocus.models import explanation_mode

        return (lambda: explanation_mode(model)), True
    toggles = _toggles(model)
    if not toggles:
        raise ValueError(BCos().not_exact(model, True))

    @contextlib.contextmanager
    def toggled() -> Iterator[None]:
        previous = [bool(getattr(m, "is_in_explanation_mode", False)) for m in toggles]
        for m in toggles:
            m.set_explanation_mode(True)
        try:
            yield
        finally:
            for m, was in zip(toggles, previous):
                m.set_explanation_mode(was)

    return toggled, False


@register_method
class BCos(AttributionMethod):
    name = "bcos"
    label = "B-cos"
    refuse_inexact = True

    def exact_for(self, model: nn.Module) -> bool:
        """B-cos models only: rightfocus's (dynamic scales) or modules with an explanation mode."""
        return _has_dynamic_scales(model) or bool(_toggles(model))

    def not_exact(self, model: nn.Module, strict: bool) -> str:
        return (f"method 'bcos' needs a B-cos model (modules with an explanation mode); {type(model).__name__} "
                f"(kind {getattr(model, 'kind', None)!r}) has none: use method 'ixg' or 'gradcam'")

    def context(self, model: nn.Module) -> ContextManager:
        return bcos_mode(model)[0]()

    def guidance_exact(self, model: nn.Module) -> bool:
        return bcos_mode(model)[1]

    def inexact_guidance(self, model: nn.Module) -> str:
        return (f"{type(model).__name__}'s explanation mode detaches the B-cos scales in the forward pass (the "
                "bcos package does): the maps are exact B-cos explanations, but every gradient through "
                "Guide's forward (the classification loss's too) treats the scales as constants. For exact "
                "guidance use rightfocus's B-cos models (rightfocus.models.build_model('bcos', ...)), which "
                "load the B-cos-v2 release files")
