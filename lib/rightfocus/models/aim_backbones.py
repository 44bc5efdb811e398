"""Bottom-up backbones for AIM, from torchvision, cut into the paper's numbered stages.

Stage numbering (the paper does not number them; this choice): ConvNeXt S0..S3 (S0 includes the stem); ResNet stem = 0, layer i = i.
Each backbone is returned as ``stages``: a ModuleDict keyed by the tap names ``mid1 .. final``
(taps.py), each an ``nn.Sequential`` of numbered stage modules (ResNet's ``mid1`` holds the stem
and layer1), plus the numbering, channels and strides the AIM pathway needs, and the backbone's own
classifier (used by the bottom-up variant and by the plain baseline in Table 6).

Weights are never downloaded: ``weights=`` is a local torchvision state-dict file (resolved and
read with `rightfocus.models.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn
from torchvision import models as tvm
from torchvision.models.convnext import CNBlockConfig

from .vanilla import TinyResNetLayout
from .weights import read_state_dict, resolve_weights

__all__ = ["Backbone", "AIM_ARCHS", "build_backbone", "build_torchvision"]

#: architectures AIM supports; ``tiny`` (the vanilla kind's ResNet-shaped demo net, so demo baselines
#: and AIM share a backbone) and ``tiny_convnext`` (ConvNeXt-shaped) are for tests and the demo
AIM_ARCHS: tuple[str, ...] = ("convnext_tiny", "resnet50", "resnet101", "tiny", "tiny_convnext")


@dataclass
class Backbone:
    """A backbone cut into numbered stages."""

    family: str  # "convnext" | "resnet"
    stages: nn.ModuleDict  # tap name -> nn.Sequential of numbered stage modules
    indices: dict[str, tuple[int, ...]]  # tap name -> stage numbers it holds, in order
    in_channels: dict[int, int]  # stage number -> channels of its input
    out_channels: dict[int, int]  # stage number -> channels of its output
    strides: dict[int, int]  # stage number -> spatial downsampling factor (stages after the stem)
    head: nn.Module  # the backbone's own classifier: final activation -> logits


def _tiny_convnext(num_classes: int, drop_path: float) -> nn.Module:
    """ConvNeXt-shaped tiny net (torchvision's ConvNeXt class): widths 16-128, one block per stage."""
    setting = [CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, 128, 1),
               CNBlockConfig(128, None, 1)]
    return tvm.convnext.ConvNeXt(setting, stochastic_depth_prob=drop_path, num_classes=num_classes)


def build_torchvision(arch: str, num_classes: int, weights: str | Path | None = None,
                      drop_path: float | None = None) -> nn.Module:
    """The plain torchvision model (``weights=None`` always; a local state-dict file may follow).

    A classifier in the file whose shape differs from `num_classes` is skipped (fine-tuning from
    ImageNet weights); any other missing or unexpected key is an error.
    """
    if drop_path is not None and "convnext" not in arch:
        raise ValueError(f"drop_path is ConvNeXt's stochastic depth; {arch!r} has none: leave it None")
    if arch == "convnext_tiny":
        extra = {} if drop_path is None else {"stochastic_depth_prob": drop_path}
        model = tvm.convnext_tiny(weights=None, num_classes=num_classes, **extra)
    elif arch in ("resnet50", "resnet101"):
        model = getattr(tvm, arch)(weights=None, num_classes=num_classes)
    elif arch == "tiny":
        model = TinyResNetLayout(num_classes)
    elif arch == "tiny_convnext":
        model = _tiny_convnext(num_classes, 0.0 if drop_path is None else drop_path)
    else:
        raise ValueError(f"unknown AIM backbone {arch!r}; choose one of {AIM_ARCHS}")
    if weights is not None:
        _load_local_weights(model, weights)
    return model


def _load_local_weights(model: nn.Module, weights: str | Path) -> None:
    """Load a torchvision-layout state dict (local file, or relative to $WEIGHTS_ROOT) into the
    plain torchvision `model`; a classifier of another class count keeps its fresh init."""
    path = resolve_weights(weights)
    state = read_state_dict(path)
    own = model.state_dict()
    head_keys = {k for k in own if k.startswith(("fc.", "classifier.2."))}
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    bad = [k for k in [*missing, *skipped] if k not in head_keys] + list(unexpected)
    if bad:
        raise ValueError(f"backbone weights {path} do not fit torchvision's {type(model).__name__}: "
                         f"mismatched keys {bad[:8]}{'...' if len(bad) > 8 else ''}")


def build_backbone(arch: str, num_classes: int, weights: str | Path | None = None,
                   drop_path: float | None = None) -> Backbone:
    """`arch` cut into numbered stages (see module docstring)."""
    model = build_torchvision(arch, num_classes, weights, drop_path)
    if arch in ("convnext_tiny", "tiny_convnext"):
        f = model.features
        blocks = {0: nn.Sequential(f[0], f[1]), 1: nn.Sequential(f[2], f[3]),
                  2: nn.Sequential(f[4], f[5]), 3: nn.Sequential(f[6], f[7])}
        out_ch = {i: blk[-1][-1].block[0].in_channels for i, blk in blocks.items()}  # depthwise conv width
        in_ch = {0: 3, 1: out_ch[0], 2: out_ch[1], 3: out_ch[2]}
        strides = {1: 2, 2: 2, 3: 2}
        indices = {"mid1": (0,), "mid2": (1,), "mid3": (2,), "final": (3,)}
        head = nn.Sequential(model.avgpool, model.classifier)
        family = "convnext"
    else:
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        blocks = {0: stem, 1: model.layer1, 2: model.layer2, 3: model.layer3, 4: model.layer4}
        out_ch = {0: model.conv1.out_channels}
        for i in range(1, 5):
            last = blocks[i][-1]
            out_ch[i] = (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features
        in_ch = {0: 3, **{i: out_ch[i - 1] for i in range(1, 5)}}
        strides = {1: 1, 2: 2, 3: 2, 4: 2}
        indices = {"mid1": (0, 1), "mid2": (2,), "mid3": (3,), "final": (4,)}
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), model.fc)
        family = "resnet"
    stages = nn.ModuleDict({tap: nn.Sequential(*[blocks[i] for i in idx]) for tap, idx in indices.items()})
    return Backbone(family, stages, indices, in_ch, out_ch, strides, head)
