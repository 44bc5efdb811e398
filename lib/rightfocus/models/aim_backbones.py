"""Bottom-up backbones for AIM: a `BACKBONES` entry's network cut into the paper's numbered stages.

Stage numbering (the paper does not number them; this choice, written with each cut in
models/backbones/): ConvNeXt S0..S3 (S0 includes the stem); ResNet stem = 0, layer i = i. Each
backbone is returned as ``stages``: a ModuleDict keyed by the tap names ``mid1 .. final`` (taps.py),
each an ``nn.Sequential`` of numbered stage modules (ResNet's ``mid1`` holds the stem and layer1),
plus the numbering, channels and strides the AIM pathway needs (measured with one forward pass of a
zero image), and the backbone's own classifier (used by the bottom-up variant and by the plain
baseline in Table 6).

Weights are never downloaded: ``weights=`` is a local torchvision state-dict file (resolved and
read with `rightfocus.models.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .backbones import BACKBONES, Cut, buildable
from .weights import read_state_dict, resolve_weights

__all__ = ["AIM_ARCHS", "Backbone", "NumberedBackbone", "build_backbone", "build_torchvision", "numbered_stages"]

#: side of the zero image the channels and strides are measured with
PROBE_SIZE = 64


@dataclass
class NumberedBackbone:
    """A backbone cut into numbered stages (built from its `rightfocus.models.Backbone` entry)."""

    family: str  # "convnext" | "resnet" | ... (`rightfocus.models.Backbone.family`)
    stages: nn.ModuleDict  # tap name -> nn.Sequential of numbered stage modules
    indices: dict[str, tuple[int, ...]]  # tap name -> stage numbers it holds, in order
    in_channels: dict[int, int]  # stage number -> channels of its input
    out_channels: dict[int, int]  # stage number -> channels of its output
    strides: dict[int, int]  # stage number -> spatial downsampling factor (stages after the first)
    head: nn.Module  # the backbone's own classifier: final activation -> logits


#: `NumberedBackbone` under its short name (`rightfocus.models.Backbone` is the registry entry)
Backbone = NumberedBackbone


def __getattr__(name: str) -> Any:
    if name == "AIM_ARCHS":  # the architectures AIM builds, now (registered backbones included)
        return buildable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _entry(arch: str):
    entry = BACKBONES.get(arch)
    if entry is None or not entry.buildable:
        raise ValueError(f"unknown AIM backbone {arch!r}; choose one of {buildable()}")
    return entry


def build_torchvision(arch: str, num_classes: int, weights: str | Path | None = None,
                      drop_path: float | None = None) -> nn.Module:
    """The plain torchvision-layout model (random init; a local state-dict file may follow).

    A classifier in the file whose shape differs from `num_classes` is skipped (fine-tuning from
    ImageNet weights); any other missing or unexpected key is an error.
    """
    entry = _entry(arch)
    if drop_path is not None and entry.drop_path_option is None:
        raise ValueError(f"drop_path is ConvNeXt's stochastic depth; {arch!r} has none: leave it None")
    model = entry.build_net(num_classes, **({} if drop_path is None else {entry.drop_path_option: drop_path}))
    if weights is not None:
        _load_local_weights(model, weights, entry.classifier)
    return model


def _load_local_weights(model: nn.Module, weights: str | Path, classifier: str) -> None:
    """Load a torchvision-layout state dict (local file, or relative to $WEIGHTS_ROOT) into the
    plain torchvision `model`; a classifier of another class count keeps its fresh init."""
    path = resolve_weights(weights)
    state = read_state_dict(path)
    own = model.state_dict()
    head_keys = {k for k in own if k.startswith(f"{classifier}.")}
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    bad = [k for k in [*missing, *skipped] if k not in head_keys] + list(unexpected)
    if bad:
        raise ValueError(f"backbone weights {path} do not fit torchvision's {type(model).__name__}: "
                         f"mismatched keys {bad[:8]}{'...' if len(bad) > 8 else ''}")


def numbered_stages(cut: Cut) -> tuple[dict[int, nn.Module], dict[str, tuple[int, ...]]]:
    """The cut's numbered stages, each a Sequential of its modules (a Sequential's own children, a
    list's items), and the stage numbers of each tap."""
    blocks: dict[int, nn.Module] = {}
    for parts in cut.values():
        for idx, part in parts.items():
            modules = list(part) if isinstance(part, (list, tuple, nn.Sequential)) else [part]
            blocks[idx] = nn.Sequential(*modules)
    return blocks, {tap: tuple(parts) for tap, parts in cut.items()}


@torch.no_grad()
def _measure(blocks: dict[int, nn.Module]) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """Input / output channels and strides of each stage, from one forward pass of a zero image
    (evaluation mode, on the parameters' device: the meta device measures without computing)."""
    device = next(p.device for b in blocks.values() for p in b.parameters())
    h = torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE, device=device)
    in_ch, out_ch, strides = {}, {}, {}
    modes = {m: m.training for b in blocks.values() for m in b.modules()}
    for b in blocks.values():
        b.eval()
    try:
        for idx in sorted(blocks):
            out = blocks[idx](h)
            in_ch[idx], out_ch[idx] = h.shape[1], out.shape[1]
            if idx != min(blocks):
                strides[idx] = h.shape[-1] // out.shape[-1]
            h = out
    finally:
        for m, training in modes.items():
            m.train(training)
    return in_ch, out_ch, strides


def build_backbone(arch: str, num_classes: int, weights: str | Path | None = None,
                   drop_path: float | None = None) -> NumberedBackbone:
    """`arch` cut into numbered stages (see module docstring)."""
    entry = _entry(arch)
    model = build_torchvision(arch, num_classes, weights, drop_path)
    blocks, indices = numbered_stages(entry.cut(model))
    in_ch, out_ch, strides = _measure(blocks)
    classifier = getattr(model, entry.classifier)
    pool = [nn.AdaptiveAvgPool2d(1)] + ([nn.Flatten(1)] if entry.classifier_input == "vector" else [])
    head = nn.Sequential(*pool, classifier)
    stages = nn.ModuleDict({tap: nn.Sequential(*[blocks[i] for i in idx]) for tap, idx in indices.items()})
    return NumberedBackbone(entry.family, stages, indices, in_ch, out_ch, strides, head)
