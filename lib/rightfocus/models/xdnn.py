"""The ``xdnn`` model kind: bias-free ResNets (X-DNN, Hesse et al. 2021; used by Rao et al. 2023,
Sec. 3.2, to get exact IntGrad).

The X-Fixup ResNet of the X-DNN release (``xfixup_resnet50_model_best.pth.tar``): torchvision's
ResNet layout with no additive term anywhere: convolutions without bias, no BatchNorm, no Fixup
scalar biases, no scalar ``scale`` multiplier, each block's downsample a bare 1x1 conv
(``layerN.0.downsample.weight``), stem conv 7x7/2, ReLU, max pool, and ``fc`` without bias. Training
stability comes from the Fixup initialisation alone. With ReLU, max-pool and average pooling the
network is positively homogeneous of degree 1, ``f(a x) = a f(x)`` for a > 0, so Integrated
Gradients with a zero baseline equals input x gradient exactly.

Taps as for every ResNet: mid1 = stem + layer1, mid2..final = layer2..layer4.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from .taps import PooledLinear, TappedModel
from .weights import identity_key_map


class XBlock(nn.Module):
    """Fixup residual block without biases: basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1)."""

    def __init__(self, inplanes: int, planes: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        self.expansion = 4 if bottleneck else 1
        out = planes * self.expansion
        if bottleneck:
            convs = [nn.Conv2d(inplanes, planes, 1, bias=False), nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
                     nn.Conv2d(planes, out, 1, bias=False)]
        else:
            convs = [nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False), nn.Conv2d(planes, planes, 3, 1, 1, bias=False)]
        for i, conv in enumerate(convs):
            setattr(self, f"conv{i + 1}", conv)
        self.num_convs = len(convs)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Conv2d(inplanes, out, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for i in range(1, self.num_convs):
            out = self.relu(getattr(self, f"conv{i}")(out))
        out = getattr(self, f"conv{self.num_convs}")(out)
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class XResNetLayout(nn.Module):
    """torchvision-style names (conv1, layer1..4, fc); no BatchNorm."""

    def __init__(self, layers: Sequence[int], bottleneck: bool, num_classes: int, width: int = 64,
                 small_stem: bool = False, in_chans: int = 3) -> None:
        super().__init__()
        if small_stem:
            self.conv1 = nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_chans, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.relu = nn.ReLU()
        inplanes = width
        for i, n in enumerate(layers):
            planes, blocks = width * 2**i, []
            for j in range(n):
                blocks.append(XBlock(inplanes, planes, 2 if (i and not j) else 1, bottleneck))
                inplanes = planes * blocks[-1].expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, num_classes, bias=False)
        self._fixup_init(sum(layers))

    def _fixup_init(self, num_blocks: int) -> None:
        """Fixup (Zhang et al. 2019): He init scaled by L^(-1/(2m-2)) in each branch, last conv and
        the classifier zero."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if isinstance(m, XBlock):
                m_ = m.num_convs
                for i in range(1, m_):
                    getattr(m, f"conv{i}").weight.data.mul_(num_blocks ** (-1.0 / (2 * m_ - 2)))
                nn.init.zeros_(getattr(m, f"conv{m_}").weight)
        nn.init.zeros_(self.fc.weight)


class XDNNResNet(TappedModel):
    """Bias-free X-DNN ResNet with taps mid1 (stem+layer1) .. final (layer4)."""

    kind = "xdnn"

    def __init__(self, net: XResNetLayout) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(
            {
                "mid1": nn.Sequential(net.conv1, net.relu, net.maxpool, net.layer1),
                "mid2": net.layer2,
                "mid3": net.layer3,
                "final": net.layer4,
            }
        )
        self.head = PooledLinear(net.fc.in_features, net.fc.out_features, bias=False)
        self.head.fc = net.fc
        self.source_key_map = identity_key_map(net, self)


ARCHS = {
    "resnet18": dict(layers=(2, 2, 2, 2), bottleneck=False),
    "resnet50": dict(layers=(3, 4, 6, 3), bottleneck=True),
    "tiny": dict(layers=(1, 1, 1, 1), bottleneck=False, width=16, small_stem=True),
}


def build(arch: str, num_classes: int, **options) -> XDNNResNet:
    """An X-DNN ResNet; options override the layout (layers, width, small_stem, in_chans)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown xdnn arch {arch!r}; choose from {sorted(ARCHS)}")
    return XDNNResNet(XResNetLayout(num_classes=num_classes, **{**ARCHS[arch], **options}))
