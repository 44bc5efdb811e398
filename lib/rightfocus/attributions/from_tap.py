"""Attributions from one forward pass: the logits and a tap's activation (Rao et al. 2023, Sec. 3.2).

The training step runs ONE forward pass (`TappedModel.forward_taps`) and differentiates the selected
logits w.r.t. the tap's activation; nothing here runs the model again. With ``create_graph=True`` the
map stays differentiable w.r.t. the parameters (double backprop), which is what guidance optimises.

Which methods exist, how each combines the gradient with the activation, which models each is exact
on and which context it needs: `rightfocus.attributions.methods` (the registry
``ATTRIBUTION_METHODS``; the single-pass ones are `TAP_METHODS`). The forward AND the attribution
gradient run inside `attribution_context(model, method)`; the loss's ``backward()`` runs OUTSIDE it
(the B-cos layers read the switch at backward time: scales constant for the explanation's own input
derivative, in the graph for the loss's backward).
"""

from __future__ import annotations

from torch import Tensor

from rightfocus.attributions.gradients import select_logits
from rightfocus.attributions.methods import TAP_METHODS, attribution_context, get_method

__all__ = ["TAP_METHODS", "attribution_context", "attribution_from_tap", "map_from_gradient", "select_logits"]


def _single_pass(method: str):
    m = get_method(method)
    if not m.single_pass:
        raise ValueError(f"attribution method {method!r} is not computed from one forward pass; choose one of "
                         f"{list(TAP_METHODS)} (or use rightfocus.attributions.attribute)")
    return m


def map_from_gradient(grad: Tensor, activation: Tensor, method: str) -> Tensor:
    """Combine a gradient and its activation [N, C, h, w] into a map [N, h, w] (the method's rule)."""
    return _single_pass(method).combine(grad, activation)


def attribution_from_tap(
    logits: Tensor,
    activation: Tensor,
    targets: Tensor,
    method: str,
    create_graph: bool = False,
) -> Tensor:
    """Attribution maps [N, h, w] at the tap's resolution for class ``targets[i]`` of image i.

    Gradient of ``sum_i logits[i, targets[i]]`` w.r.t. `activation` (one backward for the whole batch;
    images are independent in eval mode and in train mode up to batch-norm statistics, as in the
    reference code), then the method's combination (`AttributionMethod.from_tap`). `activation` must be
    part of the graph of `logits` (from ``forward_taps``; for the input tap set ``requires_grad`` before
    the forward).
    """
    return _single_pass(method).from_tap(logits, activation, targets, create_graph=create_graph)
