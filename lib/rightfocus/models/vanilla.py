"""The ``vanilla`` model kind: torchvision classifiers with a new head and named taps
(Rao et al. 2023, Sec. 4-5: ResNet-50 etc.; AIM, Sec. 4: ResNet-50, ConvNeXt-tiny).

Every `BACKBONES` entry with a constructor and a stage cut builds here: the taps mid1 .. final are
the cut's four parts (models/backbones/: ResNet mid1 = stem + layer1 .. final = layer4; DenseNet with
each transition folded into the start of the next stage; ConvNeXt's four stages with their
downsampling layers). Resolutions at 224 px: 56, 28, 14, 7. Head: global average pooling + the
network's own classifier (ConvNeXt: pooling, its LayerNorm, linear). Models are built with random
initialisation; pretrained weights come only from local files (see `weights`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import BACKBONES, Backbone, Cut, buildable
from .backbones.resnet import cut_resnet
from .backbones.small import TinyResNetLayout
from .taps import PooledLinear, TappedModel
from .weights import identity_key_map

__all__ = ["ARCHS", "TinyResNetLayout", "PooledMapHead", "PooledVectorHead", "VanillaModel", "VanillaResNet", "build", "flat_stages"]


def flat_stages(cut: Cut) -> nn.ModuleDict:
    """One module per tap: the tap's only module as it is, else a Sequential of its stages' modules
    (a stage given as a list contributes each of its modules)."""
    stages = {}
    for tap, parts in cut.items():
        pieces = [m for part in parts.values() for m in (part if isinstance(part, (list, tuple)) else [part])]
        single = len(parts) == 1 and not isinstance(next(iter(parts.values())), (list, tuple))
        stages[tap] = pieces[0] if single else nn.Sequential(*pieces)
    return nn.ModuleDict(stages)


class PooledMapHead(nn.Module):
    """Global average pooling, then a classifier that reads the pooled [N, C, 1, 1] map (ConvNeXt's:
    LayerNorm2d, flatten, linear)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, h: Tensor) -> Tensor:
        return self.classifier(F.adaptive_avg_pool2d(h, 1))


class PooledVectorHead(nn.Module):
    """Global average pooling, flatten, then any classifier module (e.g. MobileNet's MLP)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.fc = classifier

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def _head(entry: Backbone, net: nn.Module) -> nn.Module:
    classifier = getattr(net, entry.classifier)
    if entry.classifier_input == "map":
        return PooledMapHead(classifier)
    if not isinstance(classifier, nn.Linear):
        return PooledVectorHead(classifier)
    head = PooledLinear(classifier.in_features, classifier.out_features, bias=classifier.bias is not None)
    head.fc = classifier  # the network's own (initialised) classifier replaces the fresh one
    return head


class VanillaModel(TappedModel):
    """A torchvision network cut into the taps of its `Backbone` entry, with its own classifier."""

    def __init__(self, net: nn.Module, entry: Backbone | str) -> None:
        super().__init__()
        entry = BACKBONES[entry] if isinstance(entry, str) else entry
        self.stages = flat_stages(entry.cut(net))
        self.head = _head(entry, net)
        self.source_key_map = identity_key_map(net, self)


class VanillaResNet(VanillaModel):
    """A torchvision ResNet (or the tiny one) with taps mid1..final = (stem+)layer1..layer4."""

    def __init__(self, net: nn.Module, entry: Backbone | str = "resnet50") -> None:
        super().__init__(net, entry)


#: names of the per-family classes `VanillaModel` replaces -> a backbone of that family (deprecated)
_FAMILY_CLASSES = {"VanillaDenseNet": "densenet121", "VanillaConvNeXt": "convnext_tiny"}


def __getattr__(name: str) -> Any:
    if name == "ARCHS":  # the architectures this kind builds, now (registered backbones included)
        return buildable()
    if name in _FAMILY_CLASSES:
        import functools
        import warnings

        warnings.warn(f"{name}(net) is deprecated; use VanillaModel(net, '<backbone name>') or "
                      "build_model('vanilla', arch, num_classes)", DeprecationWarning, stacklevel=2)
        return functools.partial(VanillaModel, entry=_FAMILY_CLASSES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(arch: str, num_classes: int, **options) -> TappedModel:
    """A vanilla torchvision classifier; `options` go to the backbone's constructor (torchvision's, or
    for ``tiny`` `TinyResNetLayout`: width, layers, in_chans)."""
    entry = BACKBONES.get(arch)
    if entry is None or not entry.buildable:
        raise ValueError(f"unknown vanilla arch {arch!r}; choose from {sorted(buildable())}")
    cls = VanillaResNet if entry.cut is cut_resnet else VanillaModel  # messages name a ResNet as such
    return cls(entry.build_net(num_classes, **options), entry)
