"""`AttributionMethod`: one attribution method, its declared properties and its computations;
`ATTRIBUTION_METHODS`: the registry every consumer reads (grids, `Guide`, training, figures, widgets).

A method is one class in one file that calls `register_method`. What the rest of the library reads:

- ``name`` / ``label``: the registry key (run configs, results rows) and the name shown in plots;
- ``single_pass``: the map comes from the logits and a tap's activation of ONE forward pass
  (`from_tap`), so training steps, `Guide` and every layer of any ``nn.Module`` can use it;
- ``differentiable``: the map can be kept in the graph (``create_graph=True``) for guidance;
- ``taps``: ``"input"`` (input only), ``"any"`` or ``"layer"`` (needs a layer other than the input);
- ``eval_tap``: where the evaluation figures attribute it (``ext.sanity``);
- ``every_kind``: evaluation figures show it for every model kind (GradCAM); otherwise only for the
  kinds whose native method it is (each `rightfocus.models.kinds.ModelKind` names its native method:
  Rao et al. 2023, Sec. 3.2: IxG for vanilla, IntGrad for X-DNNs, B-cos for B-cos);
- `exact_for` (model): whether the single-pass map is the method's definition on that model;
- `context` (model): what the forward pass AND the attribution gradient must run in.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, ContextManager, Sequence, TypeVar

from rightfocus.attributions.gradients import input_leaf, sdpa_math, tap_gradient
from rightfocus.registry import NameView, Registry

if TYPE_CHECKING:
    from torch import Tensor, nn

INPUT_ONLY, ANY_TAP, NEEDS_LAYER = "input", "any", "layer"

ATTRIBUTION_METHODS: Registry["AttributionMethod"] = Registry(
    "attribution method",
    "write a subclass of rightfocus.attributions.methods.AttributionMethod and decorate it with "
    "@register_method (docs/extending.md, 'Add an attribution method')",
)


class AttributionMethod:
    """Base class: Input x Gradient at a tap from one forward pass, exact on every model, no context.

    Subclasses override `combine` (gradient and activation -> map), and where they need it `exact_for`,
    `context`, `attribute` (a method that is not single-pass) and the declared properties."""

    name: str = ""
    label: str = ""
    single_pass: bool = True
    differentiable: bool = True
    taps: str = ANY_TAP
    eval_tap: str = "input"
    every_kind: bool = False
    #: a model on which `exact_for` is False cannot run the method at all (True) or gets an
    #: approximation (False: refused where exactness is required, warned about elsewhere)
    refuse_inexact: bool = False

    # ---- properties that depend on the model ----------------------------------------------------
    def exact_for(self, model: "nn.Module") -> bool:
        """Whether the single-pass map is this method's own definition on `model`."""
        return True

    def not_exact(self, model: "nn.Module", strict: bool) -> str:
        """What is wrong when `exact_for(model)` is False (the error or warning text)."""
        return f"method {self.name!r} is not exact for {type(model).__name__}"

    def check(self, model: "nn.Module", strict: bool = True) -> None:
        """Raise ValueError (`strict`, or a method that cannot run on `model`) or warn when the
        single-pass map is not exact on `model`."""
        if self.exact_for(model):
            return
        if strict or self.refuse_inexact:
            raise ValueError(self.not_exact(model, True))
        warnings.warn(self.not_exact(model, False), UserWarning, stacklevel=3)

    def context(self, model: "nn.Module") -> ContextManager:
        """The method's own context for the forward pass and the attribution gradient."""
        return contextlib.nullcontext()

    def guidance_exact(self, model: "nn.Module") -> bool:
        """Whether the gradient of a loss on the maps w.r.t. the parameters is the exact derivative."""
        return True

    def inexact_guidance(self, model: "nn.Module") -> str:
        """The warning when `guidance_exact(model)` is False."""
        return (f"method {self.name!r} on {type(model).__name__}: the guidance gradient is not the exact "
                "derivative of the localisation loss")

    def shown_for(self, kind: str) -> bool:
        """Whether evaluation figures show this method for models of `kind` (native to it, or every kind)."""
        return self.every_kind or native_method(kind) == self.name

    def check_tap(self, layer: str) -> None:
        """Refuse a tap the method is not defined at."""
        if self.taps == INPUT_ONLY and layer != "input":
            raise ValueError(f"{self.name} is defined at the input; call it with layer='input'")
        if self.taps == NEEDS_LAYER and layer == "input":
            raise ValueError(f"{self.name} needs a layer other than the input; call it with e.g. layer='final'")

    # ---- computations ----------------------------------------------------------------------------
    def combine(self, grad: "Tensor", activation: "Tensor") -> "Tensor":
        """A gradient and its activation [N, C, h, w] -> the map [N, h, w] (Input x Gradient)."""
        return (grad * activation).sum(1)

    def from_tap(self, logits: "Tensor", activation: "Tensor", targets: "Tensor",
                 create_graph: bool = False) -> "Tensor":
        """Maps [N, h, w] at the tap's resolution from ONE forward pass (`activation` in the graph of
        `logits`), for class ``targets[i]`` of image i."""
        if not self.single_pass:
            raise ValueError(f"attribution method {self.name!r} is not computed from one forward pass; "
                             "use rightfocus.attributions.attribute")
        return self.combine(tap_gradient(logits, activation, targets, create_graph), activation)

    def attribute(self, model: "nn.Module", images: "Tensor", targets: "Tensor", layer: str = "input",
                  create_graph: bool = False, steps: int = 32) -> "Tensor":
        """Maps [N, h, w] at `layer`'s resolution for a `TappedModel` (the general case; single-pass
        methods: one forward pass inside `attribution_context`). `steps`: path methods only."""
        x = input_leaf(images) if layer == "input" else images
        with attribution_context(model, self.name):
            logits, acts = model.forward_taps(x, [layer])
            return self.from_tap(logits, acts[layer], targets, create_graph=create_graph)


M = TypeVar("M", bound=type)


def register_method(cls: M) -> M:
    """Class decorator: register an instance of `cls` under ``cls.name``."""
    ATTRIBUTION_METHODS.register(cls.name, cls())
    return cls


def get_method(name: str) -> AttributionMethod:
    """The registered method `name` (`rightfocus.registry.UnknownName`, a ValueError, otherwise)."""
    return ATTRIBUTION_METHODS[name]


def attribution_context(model: "nn.Module", method: str, strict: bool | None = True) -> ContextManager:
    """The context the forward pass AND the attribution gradient must run in for `method`; the loss's
    ``backward()`` runs OUTSIDE it (B-cos layers read the switch at backward time).

    Math attention (double-differentiable) and the method's own context (B-cos: the explanation
    mode). `strict`: True refuses a model on which the single-pass map is not exact (single-pass
    ``intgrad`` on a model with biases), False warns, None skips the check (a caller that checked once,
    e.g. `rightfocus.Guide` at construction). A method that cannot run on the model (``bcos`` on a
    non-B-cos model) is always refused.

    Usage (training step)::

        with attribution_context(model, method):
            logits, acts = model.forward_taps(x, [tap])
            maps = attribution_from_tap(logits, acts[tap], targets, method, create_graph=True)
        loss = bce(logits, y) + lam * localisation_loss("energy", maps, masks)
        loss.backward()   # outside the context
    """
    m = get_method(method)
    if strict is not None:
        m.check(model, strict)
    stack = contextlib.ExitStack()
    stack.enter_context(sdpa_math())
    stack.enter_context(m.context(model))
    return stack


def native_method(kind: str) -> str:
    """The method native to model kind `kind` (its `ModelKind.native_method`), else the first one
    shown for every kind (GradCAM)."""
    from rightfocus.models.kinds import MODEL_KINDS

    entry = MODEL_KINDS.get(kind)
    if entry is not None and entry.native_method:
        return entry.native_method
    return next(m.name for m in ATTRIBUTION_METHODS.values() if m.every_kind)


def native_kinds() -> tuple[str, ...]:
    """Model kinds that have a native method, in registration order."""
    from rightfocus.models.kinds import native_methods

    return tuple(native_methods())


def evaluation_methods(kind: str) -> tuple[tuple[str, str], ...]:
    """(method, tap) pairs the evaluation figures show for model kind `kind`: the differentiable
    methods native to it, then those shown for every kind, each at its ``eval_tap``."""
    ms = [m for m in ATTRIBUTION_METHODS.values() if m.differentiable and m.shown_for(kind)]
    ms.sort(key=lambda m: m.every_kind)  # stable: natives first, registration order otherwise
    return tuple((m.name, m.eval_tap) for m in ms)


#: every registered method (`rightfocus.attributions.attribute` accepts them all)
METHODS: Sequence[str] = ATTRIBUTION_METHODS.view()
#: methods computed from one forward pass at a tap (training steps, `Guide`, `layer_maps`)
TAP_METHODS: Sequence[str] = ATTRIBUTION_METHODS.view(lambda m: m.single_pass)
#: methods a run can be guided with: single-pass and differentiable
GUIDE_METHODS: Sequence[str] = ATTRIBUTION_METHODS.view(lambda m: m.single_pass and m.differentiable)
__all__ = ["ATTRIBUTION_METHODS", "AttributionMethod", "GUIDE_METHODS", "METHODS", "NameView", "TAP_METHODS",
           "attribution_context", "evaluation_methods", "get_method", "native_kinds", "native_method",
           "register_method"]
