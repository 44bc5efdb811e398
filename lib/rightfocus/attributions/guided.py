"""Guided Backpropagation for ReLU AND GELU networks (Springenberg et al. 2015), for evaluation.

The guided rule: at every nonlinearity only positive gradients pass back, i.e. the gradient leaving a
nonlinearity towards its input is replaced by its positive part, ``relu(df/dx * g)``. For ReLU this is
captum's `GuidedBackprop`. captum overrides ``nn.ReLU`` modules only, so on ConvNeXt (``nn.GELU``) it
silently returns the plain gradient (captum overrides nn.ReLU modules only); here the same rule is applied to both module types.
Functional calls (``F.relu`` / ``F.gelu`` in a forward) are not seen: models must use modules, and
`guided_rule` refuses a model that has none.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn

#: nonlinearity modules the guided rule overrides
GUIDED_MODULES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.GELU)


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward passes only the positive part of the incoming gradient."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        # a fresh tensor, so that in-place nonlinearities (ReLU(inplace=True)) do not modify a view
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return torch.relu(grad)


def _guard_input(module: nn.Module, args: tuple) -> tuple:
    return (_PositiveGradient.apply(args[0]), *args[1:])


@contextlib.contextmanager
def guided_rule(model: nn.Module) -> Iterator[None]:
    """While on, gradients through every ``nn.ReLU`` / ``nn.GELU`` of `model` follow the guided rule.

    The forward pass must run inside the context (the rule is recorded in the graph)."""
    modules = [m for m in model.modules() if isinstance(m, GUIDED_MODULES)]
    if not modules:
        raise ValueError(
            f"{type(model).__name__} has no nn.ReLU / nn.GELU modules, so guided backprop would equal "
            "the plain gradient; use method 'ixg' or 'gradcam' for this model"
        )
    handles = [m.register_forward_pre_hook(_guard_input) for m in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
