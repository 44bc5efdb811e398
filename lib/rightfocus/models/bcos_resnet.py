"""B-cos ResNets (B-cos v2): torchvision ResNet topology with B-cos convs, uncentred bias-free batch
norm, no ReLUs, 6 input channels, a stem that pools with ``AvgPool2d(3, 2, 1)`` (not max pooling), a
1x1 B-cos classifier before global average pooling and a fixed logit bias. Computes what B-cos v2's
``bcos.models.resnet`` computes (checked against the package in tests/test_release_bcos.py).

Taps as for every ResNet here (Rao et al. 2023, Sec. 5.4): mid1 = stem + layer1, mid2..final =
layer2..layer4. Module names inside follow the upstream layout (``conv1.linear.weight``,
``layer1.0.bn1.weight``, ``fc.linear.weight``) so release state dicts map on. ``tiny`` is B-cos v2's
``small_inputs`` variant (3x3 stride-1 stem, no pooling) at width 16 with one block per stage.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from .bcos_layers import (
    DEFAULT_LOGIT_BIAS,
    BcosConv2d,
    BcosConvHead,
    BcosTappedMixin,
    LogitBias,
    UncenteredBatchNorm2d,
)
from .taps import TappedModel
from .weights import identity_key_map


class _Block(nn.Module):
    """Basic (two 3x3) or bottleneck (1x1-3x3-1x1, stride on the 3x3) residual block, no ReLU."""

    def __init__(self, inplanes: int, planes: int, stride: int, bottleneck: bool, b: float, max_out: int) -> None:
        super().__init__()
        self.expansion = 4 if bottleneck else 1
        out = planes * self.expansion
        if bottleneck:
            self.conv1 = BcosConv2d(inplanes, planes, 1, b=b, max_out=max_out)
            self.bn1 = UncenteredBatchNorm2d(planes)
            self.conv2 = BcosConv2d(planes, planes, 3, stride, 1, b=b, max_out=max_out)
            self.bn2 = UncenteredBatchNorm2d(planes)
            self.conv3 = BcosConv2d(planes, out, 1, b=b, max_out=max_out)
            self.bn3 = UncenteredBatchNorm2d(out)
        else:
            self.conv1 = BcosConv2d(inplanes, planes, 3, stride, 1, b=b, max_out=max_out)
            self.bn1 = UncenteredBatchNorm2d(planes)
            self.conv2 = BcosConv2d(planes, planes, 3, 1, 1, b=b, max_out=max_out)
            self.bn2 = UncenteredBatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                BcosConv2d(inplanes, out, 1, stride, b=b, max_out=max_out), UncenteredBatchNorm2d(out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        if hasattr(self, "conv3"):
            out = self.bn3(self.conv3(out))
        return out + (x if self.downsample is None else self.downsample(x))


class BcosResNetLayout(nn.Module):
    """The upstream-shaped module tree (names only matter for loading release weights)."""

    def __init__(
        self,
        layers: Sequence[int],
        bottleneck: bool,
        num_classes: int,
        width: int = 64,
        small_stem: bool = False,
        in_chans: int = 6,
        b: float = 2.0,
        max_out: int = 1,
        logit_bias: float = DEFAULT_LOGIT_BIAS,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"a ResNet has 4 stages; got layers={list(layers)}")
        if small_stem:  # 32-64 px inputs (B-cos v2 "small_inputs"): 3x3 stride-1 stem, no pooling
            self.conv1 = BcosConv2d(in_chans, width, 3, 1, 1, b=b, max_out=max_out)
            self.pool: nn.Module = nn.Identity()
        else:
            self.conv1 = BcosConv2d(in_chans, width, 7, 2, 3, b=b, max_out=max_out)
            self.pool = nn.AvgPool2d(3, 2, 1)  # linear: keeps the model dynamic linear
        self.bn1 = UncenteredBatchNorm2d(width)
        inplanes = width
        for i, n in enumerate(layers):
            planes, blocks = width * 2**i, []
            for j in range(n):
                blocks.append(_Block(inplanes, planes, 2 if (i > 0 and j == 0) else 1, bottleneck, b, max_out))
                inplanes = blocks[-1].expansion * planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = inplanes
        self.fc = BcosConv2d(inplanes, num_classes, 1, b=b, max_out=max_out)
        self.logit_layer = LogitBias(logit_bias)
        for m in self.modules():  # B-cos v2's (torchvision's) ResNet init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class BcosResNet(BcosTappedMixin, TappedModel):
    """B-cos ResNet with taps mid1 (stem+layer1), mid2, mid3, final (layer2..4)."""

    input_encoding = "bcos"
    kind = "bcos"

    def __init__(self, net: BcosResNetLayout) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(
            {
                "mid1": nn.Sequential(net.conv1, net.bn1, net.pool, net.layer1),
                "mid2": net.layer2,
                "mid3": net.layer3,
                "final": net.layer4,
            }
        )
        self.head = BcosConvHead(net.fc, net.logit_layer)
        self.source_key_map = identity_key_map(net, self)


_ARCHS = {
    "resnet18": dict(layers=(2, 2, 2, 2), bottleneck=False),
    "resnet50": dict(layers=(3, 4, 6, 3), bottleneck=True),
    "tiny": dict(layers=(1, 1, 1, 1), bottleneck=False, width=16, small_stem=True),
}


def bcos_resnet(arch: str, num_classes: int, **options) -> BcosResNet:
    """`arch` in resnet18, resnet50, tiny; options override the layout (width, layers, small_stem,
    in_chans, b, max_out, logit_bias)."""
    config = {**_ARCHS[arch], **options}
    return BcosResNet(BcosResNetLayout(num_classes=num_classes, **config))
