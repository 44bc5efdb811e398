"""The model-parameter randomisation sanity check (Adebayo et al., NeurIPS 2018, "Sanity checks for
saliency maps"), cascading from the output layer down: after each further layer's parameters are
re-initialised, how similar are the maps to the trained model's? An attribution method that explains
the model should lose its similarity as the layers are randomised (low = passes the check).

The procedure follows Quantus 0.6.0's MPRT with ``layer_order="top_down"``: the modules that have
``reset_parameters`` in `named_modules` order, reversed; before each reset the torch seed is set to
``seed + 1``; similarity is Spearman's rank correlation of the flattened maps (absolute values by
default, as Quantus's ``abs=True``).
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor, nn

from rightfocus.metrics.localisation import sorted_average_ranks

#: explain(model, images, targets) -> maps [N, H, W]
Explain = Callable[[nn.Module, Tensor, Tensor], Tensor]


def _average_ranks(flat: Tensor) -> Tensor:
    ranks, index = sorted_average_ranks(flat)
    return torch.empty_like(ranks).scatter_(1, index, ranks)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman's rank correlation of each row pair of `a`, `b` [N, ...] -> [N] (average ranks for
    ties, as scipy.stats.spearmanr). A constant row has no rank order: its correlation is 0
    (scipy: NaN)."""
    ra = _average_ranks(a.flatten(1).double())
    rb = _average_ranks(b.flatten(1).double())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    den = (ra.square().sum(1) * rb.square().sum(1)).sqrt()
    return torch.where(den > 0, (ra * rb).sum(1) / torch.where(den > 0, den, torch.ones_like(den)),
                       torch.zeros_like(den))


def randomisable_layers(model: nn.Module) -> list[str]:
    """Names of the modules that are re-initialised, in cascade order (output side first)."""
    return [name for name, m in model.named_modules() if hasattr(m, "reset_parameters")][::-1]


def cascading_randomisation(model: nn.Module, images: Tensor, targets: Tensor, explain: Explain,
                            seed: int = 42, absolute: bool = True) -> dict[str, Tensor]:
    """{"original": similarity of the maps to themselves, layer: similarity after randomising every
    layer down to and including it} -> Spearman correlation per image [N] (float64). The model is
    deep-copied; `model` keeps its parameters."""
    def prepared(maps: Tensor) -> Tensor:
        maps = maps.detach().double()
        return maps.abs() if absolute else maps

    was_training = model.training
    model.eval()
    original = prepared(explain(model, images, targets))
    out = {"original": spearman(original, original)}
    randomised = copy.deepcopy(model).eval()
    modules = dict(randomised.named_modules())
    for name in randomisable_layers(randomised):
        torch.manual_seed(seed + 1)
        modules[name].reset_parameters()
        out[name] = spearman(original, prepared(explain(randomised, images, targets)))
    model.train(was_training)
    return out
