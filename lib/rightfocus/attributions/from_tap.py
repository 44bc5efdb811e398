"""Attributions from one forward pass: the logits and a tap's activation (Rao et al. 2023, Sec. 3.2).

The training step runs ONE forward pass (`TappedModel.forward_taps`) and differentiates the selected
logits w.r.t. the tap's activation; nothing here runs the model again. With ``create_graph=True`` the
map stays differentiable w.r.t. the parameters (double backprop), which is what guidance optimises.

Methods computed from a tap:

- ``ixg``: Input x Gradient, sum over channels of grad * activation.
- ``intgrad``: IntGrad with a zero baseline; from one pass it is exact only on X-DNNs (no additive
  biases: positively homogeneous of degree 1, so IntGrad = IxG). `attribution_context` refuses it for
  other model kinds; `rightfocus.attributions.attribute` has the Riemann approximation for them.
- ``gradcam``: ReLU(sum_c mean_hw(grad_c) * act_c) (Selvaraju et al.).
- ``bcos``: IxG computed while the B-cos explanation mode is on (dynamic weights as constants for the
  explanation's own derivative). Both the forward and the gradient must run inside
  `attribution_context(model, "bcos")`; the loss's ``backward()`` must run OUTSIDE it (the B-cos layers
  read the switch at backward time: scales constant for the explanation's own input derivative, in the graph for the loss's backward).
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch
from torch import Tensor, nn

#: methods a training step can compute from one forward pass
TAP_METHODS: tuple[str, ...] = ("ixg", "intgrad", "gradcam", "bcos")


def _check_method(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {list(allowed)}")


def attribution_context(model: nn.Module, method: str) -> ContextManager:
    """The context the forward pass AND the attribution gradient must run in for `method`.

    ``bcos``: the model's explanation mode (`rightfocus.models.explanation_mode`); every other
    method: a null context. Also refuses combinations that would silently compute something else:
    ``bcos`` on a non-B-cos model and single-pass ``intgrad`` on a model that is not an X-DNN.

    Usage (training step)::

        with attribution_context(model, method):
            logits, acts = model.forward_taps(x, [tap])
            maps = attribution_from_tap(logits, acts[tap], targets, method, create_graph=True)
        loss = bce(logits, y) + lam * localisation_loss("energy", maps, masks)
        loss.backward()   # outside the context
    """
    kind = getattr(model, "kind", "vanilla")
    if method == "bcos":
        if kind != "bcos":
            raise ValueError(
                f"method 'bcos' needs a B-cos model, got kind {kind!r}; use 'ixg' or 'gradcam' instead"
            )
        from rightfocus.models import explanation_mode  # models may import late; keep the edge lazy

        return explanation_mode(model)
    if method == "intgrad" and kind != "xdnn":
        raise ValueError(
            f"single-pass 'intgrad' is exact only for X-DNN models (kind 'xdnn'), got kind {kind!r}; "
            "use rightfocus.attributions.attribute(..., method='intgrad') for the Riemann sum"
        )
    return contextlib.nullcontext()


def select_logits(logits: Tensor, targets: Tensor) -> Tensor:
    """Sum over the batch of ``logits[i, targets[i]]``: one backward gives every image's gradient."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be [N, K], got shape {tuple(logits.shape)}")
    targets = torch.as_tensor(targets, device=logits.device).long().reshape(-1)
    if targets.numel() != logits.shape[0]:
        raise ValueError(f"need one target per image: {targets.numel()} targets for {logits.shape[0]} images")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
        raise ValueError(f"targets must lie in [0, {logits.shape[1]}), got {targets.tolist()}")
    return logits.gather(1, targets[:, None]).sum()


def map_from_gradient(grad: Tensor, activation: Tensor, method: str) -> Tensor:
    """Combine a gradient and its activation [N, C, h, w] into a map [N, h, w]."""
    if method == "gradcam":
        weights = grad.mean(dim=(2, 3), keepdim=True)
        return torch.relu((weights * activation).sum(1))
    return (grad * activation).sum(1)  # ixg, intgrad (X-DNN), bcos


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
    reference code), then IxG / GradCAM (see the module docstring). `activation` must be part of the
    graph of `logits` (from ``forward_taps``; for the input tap set ``requires_grad`` before the forward).
    """
    _check_method(method, TAP_METHODS)
    if activation.dim() != 4:
        raise ValueError(f"activation must be [N, C, h, w], got shape {tuple(activation.shape)}")
    if not activation.requires_grad:
        raise ValueError(
            "the tap's activation does not require grad: for the 'input' tap call "
            "images.requires_grad_(True) before the forward pass"
        )
    (grad,) = torch.autograd.grad(select_logits(logits, targets), activation, create_graph=create_graph)
    return map_from_gradient(grad, activation, method)
