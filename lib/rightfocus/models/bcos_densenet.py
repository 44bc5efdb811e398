"""B-cos DenseNet-121 (B-cos v2): torchvision DenseNet topology with B-cos convs, uncentred bias-free
batch norm, ReLUs removed, 6 input channels, a stem that pools with ``AvgPool2d(3, 2, 1)``, a 1x1
B-cos classifier before global average pooling, fixed logit bias. Computes what B-cos v2's
``bcos.models.densenet`` computes; ``tiny_densenet`` is its ``small_inputs`` variant (a lone 3x3
stride-1 stem conv: no stem norm, no pooling) with small widths.

Taps (the same cut as the vanilla DenseNet, so resolutions match ResNet's layer1..4):
mid1 = stem + denseblock1 (stride 4); mid2 = transition1 + denseblock2; mid3 = transition2 +
denseblock3; final = transition3 + denseblock4 + norm5 (stride 32). Each transition is folded into
the START of the following stage.
"""

from __future__ import annotations

from typing import Sequence

import torch
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


class _DenseLayer(nn.Module):
    def __init__(self, in_ch: int, growth: int, bn_size: int, b: float, max_out: int) -> None:
        super().__init__()
        self.norm1 = UncenteredBatchNorm2d(in_ch)
        self.conv1 = BcosConv2d(in_ch, bn_size * growth, 1, b=b, max_out=max_out)
        self.norm2 = UncenteredBatchNorm2d(bn_size * growth)
        self.conv2 = BcosConv2d(bn_size * growth, growth, 3, 1, 1, b=b, max_out=max_out)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.conv2(self.norm2(self.conv1(self.norm1(x))))], 1)


class _Transition(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, b: float, max_out: int) -> None:
        super().__init__()
        self.norm = UncenteredBatchNorm2d(in_ch)
        self.conv = BcosConv2d(in_ch, out_ch, 1, b=b, max_out=max_out)
        self.pool = nn.AvgPool2d(2, 2)


class BcosDenseNetLayout(nn.Module):
    """Upstream-shaped tree: ``features.{conv0,norm0,pool0,denseblockK,transitionK,norm5}``,
    ``classifier``, ``logit_layer``."""

    def __init__(
        self,
        num_classes: int,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        small_stem: bool = False,
        in_chans: int = 6,
        b: float = 2.0,
        max_out: int = 1,
        logit_bias: float = DEFAULT_LOGIT_BIAS,
    ) -> None:
        super().__init__()
        if len(block_config) != 4:
            raise ValueError(f"the taps need 4 dense blocks; got block_config={list(block_config)}")
        f = nn.Sequential()
        if small_stem:  # 32-64 px inputs (B-cos v2 "small_inputs"): the stem is one 3x3 conv
            f.add_module("conv0", BcosConv2d(in_chans, num_init_features, 3, 1, 1, b=b, max_out=max_out))
        else:
            f.add_module("conv0", BcosConv2d(in_chans, num_init_features, 7, 2, 3, b=b, max_out=max_out))
            f.add_module("norm0", UncenteredBatchNorm2d(num_init_features))
            f.add_module("pool0", nn.AvgPool2d(3, 2, 1))
        ch = num_init_features
        for i, n in enumerate(block_config):
            block = nn.Sequential()
            for j in range(n):
                block.add_module(f"denselayer{j + 1}", _DenseLayer(ch + j * growth_rate, growth_rate, bn_size, b, max_out))
            f.add_module(f"denseblock{i + 1}", block)
            ch += n * growth_rate
            if i < 3:
                f.add_module(f"transition{i + 1}", _Transition(ch, ch // 2, b, max_out))
                ch //= 2
        f.add_module("norm5", UncenteredBatchNorm2d(ch))
        self.features = f
        self.num_features = ch
        self.classifier = BcosConv2d(ch, num_classes, 1, b=b, max_out=max_out)
        self.logit_layer = LogitBias(logit_bias)
        for m in self.modules():  # B-cos v2's (torchvision's) DenseNet init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)


_STEM = ("conv0", "norm0", "pool0")


class BcosDenseNet(BcosTappedMixin, TappedModel):
    """B-cos DenseNet with the taps documented in the module docstring."""

    input_encoding = "bcos"
    kind = "bcos"

    def __init__(self, net: BcosDenseNetLayout) -> None:
        super().__init__()
        f = net.features
        self.stages = nn.ModuleDict(
            {
                "mid1": nn.Sequential(*[m for n, m in f.named_children() if n in _STEM], f.denseblock1),
                "mid2": nn.Sequential(f.transition1, f.denseblock2),
                "mid3": nn.Sequential(f.transition2, f.denseblock3),
                "final": nn.Sequential(f.transition3, f.denseblock4, f.norm5),
            }
        )
        self.head = BcosConvHead(net.classifier, net.logit_layer)
        self.source_key_map = identity_key_map(net, self)


_ARCHS = {
    "densenet121": dict(),
    "tiny_densenet": dict(growth_rate=4, block_config=(1, 1, 1, 1), num_init_features=8, bn_size=2, small_stem=True),
}


def bcos_densenet(arch: str, num_classes: int, **options) -> BcosDenseNet:
    """`arch` in densenet121, tiny_densenet; options override (growth_rate, block_config,
    num_init_features, bn_size, small_stem, in_chans, b, max_out, logit_bias)."""
    return BcosDenseNet(BcosDenseNetLayout(num_classes=num_classes, **{**_ARCHS[arch], **options}))
