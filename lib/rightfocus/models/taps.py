"""Named taps: one forward pass that returns the logits and the activations at chosen depths.

Model guidance (Rao et al. 2023, Sec. 3.2 and 5.4) attributes at the input, at intermediate layers
and at the final layer. Every classifier here is a `TappedModel`: an ordered list of stages whose
outputs are the taps ``mid1, mid2, mid3, final`` (ResNet: layer1..layer4, the stem folded into
``mid1``), followed by a head that maps the ``final`` activation to logits. The ``input`` tap is the
tensor the model receives (already encoded: ImageNet-normalised or B-cos 6-channel).

The training step runs ONE forward pass (`forward_taps`) and differentiates the logits w.r.t. the
returned activation; no hooks, no second pass.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

TAPS: tuple[str, ...] = ("input", "mid1", "mid2", "mid3", "final")


class TappedModel(nn.Module):
    """Base class: subclasses fill `self.stages` (a ModuleDict keyed by the tap names after
    ``input``, in order) and `self.head` (final activation -> logits)."""

    stages: nn.ModuleDict
    head: nn.Module
    #: how inputs must be encoded before the model: "imagenet" (mean/std) or "bcos" (6 channels)
    input_encoding: str = "imagenet"
    #: model family: vanilla | xdnn | bcos | aim
    kind: str = "vanilla"

    @property
    def taps(self) -> tuple[str, ...]:
        return ("input", *self.stages.keys())

    def forward_taps(self, x: Tensor, taps: Sequence[str] = ()) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and the activations at `taps` (names from `self.taps`), from one forward pass."""
        unknown = set(taps) - set(self.taps)
        if unknown:
            raise ValueError(f"unknown tap(s) {sorted(unknown)}; this model has {list(self.taps)}")
        acts: dict[str, Tensor] = {}
        if "input" in taps:
            acts["input"] = x
        h = x
        for name, stage in self.stages.items():
            h = stage(h)
            if name in taps:
                acts[name] = h
        return self.head(h), acts

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_taps(x)[0]


class PooledLinear(nn.Module):
    """Global average pooling followed by a linear layer: the usual classifier head."""

    def __init__(self, in_features: int, num_classes: int, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes, bias=bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))
