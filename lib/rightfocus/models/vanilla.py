"""The ``vanilla`` model kind: torchvision classifiers with a new head and named taps
(Rao et al. 2023, Sec. 4-5: ResNet-50 etc.; AIM, Sec. 4: ResNet-50, ConvNeXt-tiny).

Taps (resolutions at 224 px in brackets):
- ResNet: mid1 = stem + layer1 (56), mid2 = layer2 (28), mid3 = layer3 (14), final = layer4 (7).
- DenseNet-121: mid1 = stem + denseblock1 (56); mid2 = transition1 + denseblock2 (28);
  mid3 = transition2 + denseblock3 (14); final = transition3 + denseblock4 + norm5 + ReLU (7).
  Each transition is folded into the START of the next stage so the cuts match ResNet's.
- ConvNeXt-tiny: the four stages, each downsampling layer folded into the start of its stage
  (features[0:2], [2:4], [4:6], [6:8]).
- tiny: ResNet-shaped, BasicBlocks, width 16 (16/32/64/128 channels), one block per stage, 3x3
  stride-1 stem without max-pool, for 32-64 px demo inputs.
Head: global average pooling + linear (ConvNeXt: pooling, its LayerNorm, linear). Models are built
with ``weights=None``; pretrained weights come only from local files (see `weights`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch.nn.functional as F
import torchvision.models as tvm
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from .taps import PooledLinear, TappedModel
from .weights import identity_key_map


class TinyResNetLayout(nn.Module):
    """A small torchvision-style ResNet (same attribute names, so its state dict reads the same)."""

    def __init__(self, num_classes: int, width: int = 16, layers: Sequence[int] = (1, 1, 1, 1), in_chans: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        inplanes = width
        for i, n in enumerate(layers):
            planes, stride, blocks = width * 2**i, (2 if i else 1), []
            for j in range(n):
                down = None
                if j == 0 and (stride != 1 or inplanes != planes):
                    down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
                blocks.append(BasicBlock(inplanes, planes, stride if j == 0 else 1, down))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class _ResNetTaps(TappedModel):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(
            {
                "mid1": nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1),
                "mid2": net.layer2,
                "mid3": net.layer3,
                "final": net.layer4,
            }
        )
        self.head = PooledLinear(net.fc.in_features, net.fc.out_features)
        self.head.fc = net.fc
        self.source_key_map = identity_key_map(net, self)


class VanillaResNet(_ResNetTaps):
    """torchvision ResNet (or the tiny one) with taps mid1..final = (stem+)layer1..layer4."""


class VanillaDenseNet(TappedModel):
    """torchvision DenseNet with the taps documented in the module docstring."""

    def __init__(self, net: tvm.DenseNet) -> None:
        super().__init__()
        f = net.features
        self.stages = nn.ModuleDict(
            {
                "mid1": nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0, f.denseblock1),
                "mid2": nn.Sequential(f.transition1, f.denseblock2),
                "mid3": nn.Sequential(f.transition2, f.denseblock3),
                # torchvision applies ReLU after norm5 in forward(); it belongs to the final tap
                "final": nn.Sequential(f.transition3, f.denseblock4, f.norm5, nn.ReLU()),
            }
        )
        self.head = PooledLinear(net.classifier.in_features, net.classifier.out_features)
        self.head.fc = net.classifier
        self.source_key_map = identity_key_map(net, self)


class _ConvNeXtHead(nn.Module):
    """Global average pooling, then ConvNeXt's own classifier (LayerNorm2d, flatten, linear)."""

    def __init__(self, classifier: nn.Sequential) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, h: Tensor) -> Tensor:
        return self.classifier(F.adaptive_avg_pool2d(h, 1))


class VanillaConvNeXt(TappedModel):
    """torchvision ConvNeXt with taps = its four stages (downsampling folded in)."""

    def __init__(self, net: tvm.ConvNeXt) -> None:
        super().__init__()
        f = net.features
        self.stages = nn.ModuleDict(
            {"mid1": f[0:2], "mid2": f[2:4], "mid3": f[4:6], "final": f[6:8]}
        )
        self.head = _ConvNeXtHead(net.classifier)
        self.source_key_map = identity_key_map(net, self)


ARCHS: dict[str, Callable[..., TappedModel]] = {
    "resnet18": lambda nc, **o: VanillaResNet(tvm.resnet18(weights=None, num_classes=nc, **o)),
    "resnet50": lambda nc, **o: VanillaResNet(tvm.resnet50(weights=None, num_classes=nc, **o)),
    "resnet101": lambda nc, **o: VanillaResNet(tvm.resnet101(weights=None, num_classes=nc, **o)),
    "densenet121": lambda nc, **o: VanillaDenseNet(tvm.densenet121(weights=None, num_classes=nc, **o)),
    "convnext_tiny": lambda nc, **o: VanillaConvNeXt(tvm.convnext_tiny(weights=None, num_classes=nc, **o)),
    "tiny": lambda nc, **o: VanillaResNet(TinyResNetLayout(nc, **o)),
}


def build(arch: str, num_classes: int, **options) -> TappedModel:
    """A vanilla torchvision classifier; `options` go to the torchvision constructor (or, for
    ``tiny``, to `TinyResNetLayout`: width, layers, in_chans)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown vanilla arch {arch!r}; choose from {sorted(ARCHS)}")
    return ARCHS[arch](num_classes, **options)
