"""B-cos ViT with a convolutional stem (B-cos v2 "vitc_s_patch1_14"): a B-cos conv stem
[48, 96, 192, 384] (3x3, stride 2, each followed by uncentred bias-free batch norm) and a 1x1 B-cos
projection give 14x14 tokens at 224 px; dim 384, depth 12, 6 heads, MLP 1536, 2-D sin-cos
positions, pre-norm blocks, mean pooling, a B-cos linear head and a fixed logit bias.

Attention is written out, ``softmax(Q K^T / sqrt(d)) V``, because the fused scaled-dot-product
kernels have no double backward, and guidance differentiates the explanation. The softmax weights
are the attention's dynamic scale: constant in explanation mode (q, k treated as constants).

Taps (tokens are reshaped to ``[N, C, h, w]`` so they attribute like conv maps): mid1 = after the
stem (projection + positions); mid2 / mid3 / final = after blocks ``depth//3``, ``2*depth//3`` and
``depth``.

Positions (``positions=``): ``"scaled"`` (default) adds ``p * rms(t)`` to each token ``t``, written
as ``p * <u, t>`` with the unit-direction factor ``u = t / (||t|| sqrt(D))`` a dynamic scale, so the
layer is dynamic linear and the contributions sum to the logit exactly. ``"add"`` adds ``p`` itself
(the usual ViT rule); then ``p`` is a constant that no input contribution accounts for and the sum of
contributions misses it.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from .bcos_layers import (
    DEFAULT_LOGIT_BIAS,
    PATCH_NORM_EPS,
    BcosConv2d,
    BcosLayerNorm,
    BcosLinear,
    BcosTappedMixin,
    DynamicScale,
    LogitBias,
    UncenteredBatchNorm2d,
)
from .taps import TappedModel
from .weights import identity_key_map

POSITION_MODES = ("scaled", "add")


def sincos_positions(h: int, w: int, dim: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """2-D sine-cosine position embedding ``[h*w, dim]`` (row-major tokens); dim divisible by 4."""
    if dim % 4:
        raise ValueError(f"sin-cos positions need dim divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64, device=device) / max(quarter - 1, 1))
    y, x = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=device), torch.arange(w, dtype=torch.float64, device=device), indexing="ij"
    )
    x, y = x.reshape(-1, 1) * omega, y.reshape(-1, 1) * omega
    return torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1).to(dtype)


class _Positions(DynamicScale):
    def __init__(self, mode: str) -> None:
        super().__init__()
        if mode not in POSITION_MODES:
            raise ValueError(f"positions must be one of {POSITION_MODES}, got {mode!r}")
        self.mode = mode

    def forward(self, tokens: Tensor, h: int, w: int) -> Tensor:
        p = sincos_positions(h, w, tokens.shape[-1], tokens.dtype, tokens.device)
        if self.mode == "add":
            return tokens + p
        norm = (tokens.pow(2).sum(-1, keepdim=True) + PATCH_NORM_EPS).sqrt()
        u = self.dynamic(tokens / (norm * math.sqrt(tokens.shape[-1])))
        return tokens + p * (u * tokens).sum(-1, keepdim=True)


class _Attention(DynamicScale):
    def __init__(self, dim: int, heads: int, b: float, max_out: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = BcosLinear(dim, 3 * dim, b=b, max_out=max_out)
        self.proj = BcosLinear(dim, dim, b=b, max_out=max_out)

    def forward(self, x: Tensor) -> Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads), dim=-1)
        out = self.dynamic(attn) @ v
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, b: float, max_out: int) -> None:
        super().__init__()
        self.norm1 = BcosLayerNorm(dim)
        self.attn = _Attention(dim, heads, b, max_out)
        self.norm2 = BcosLayerNorm(dim)
        self.mlp = nn.Sequential(BcosLinear(dim, mlp_dim, b=b, max_out=max_out), BcosLinear(mlp_dim, dim, b=b, max_out=max_out))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class BcosViTLayout(nn.Module):
    """Upstream-shaped tree: ``stem``, ``proj``, ``pos``, ``blocks``, ``norm``, ``head``, ``logit_layer``."""

    def __init__(
        self,
        num_classes: int,
        stem_channels: Sequence[int] = (48, 96, 192, 384),
        dim: int = 384,
        depth: int = 12,
        heads: int = 6,
        mlp_dim: int = 1536,
        positions: str = "scaled",
        in_chans: int = 6,
        b: float = 2.0,
        max_out: int = 1,
        logit_bias: float = DEFAULT_LOGIT_BIAS,
    ) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"the taps mid2/mid3/final need depth >= 3, got {depth}")
        stem, ch = [], in_chans
        for c in stem_channels:
            stem += [BcosConv2d(ch, c, 3, 2, 1, b=b, max_out=max_out), UncenteredBatchNorm2d(c)]
            ch = c
        self.stem = nn.Sequential(*stem)
        self.proj = BcosConv2d(ch, dim, 1, b=b, max_out=max_out)  # "patch1": 1x1 patches of the stem map
        self.pos = _Positions(positions)
        self.blocks = nn.ModuleList(_Block(dim, heads, mlp_dim, b, max_out) for _ in range(depth))
        self.norm = BcosLayerNorm(dim)
        self.head = BcosLinear(dim, num_classes, b=b, max_out=max_out)
        self.logit_layer = LogitBias(logit_bias)


def _to_tokens(h: Tensor) -> Tensor:
    return h.flatten(2).transpose(1, 2)


def _to_map(tokens: Tensor, h: int, w: int) -> Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


class _StemStage(nn.Module):
    def __init__(self, stem: nn.Module, proj: nn.Module, pos: _Positions) -> None:
        super().__init__()
        self.stem, self.proj, self.pos = stem, proj, pos

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(self.stem(x))
        return _to_map(self.pos(_to_tokens(h), h.shape[2], h.shape[3]), h.shape[2], h.shape[3])


class _BlockStage(nn.Module):
    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, h: Tensor) -> Tensor:
        return _to_map(self.blocks(_to_tokens(h)), h.shape[2], h.shape[3])


class _ViTHead(nn.Module):
    def __init__(self, norm: nn.Module, fc: BcosLinear, logit: LogitBias) -> None:
        super().__init__()
        self.norm, self.fc, self.logit = norm, fc, logit

    def forward(self, h: Tensor) -> Tensor:
        return self.logit(self.fc(self.norm(_to_tokens(h)).mean(1)))


class BcosViT(BcosTappedMixin, TappedModel):
    """B-cos ViT-C with the taps documented in the module docstring."""

    input_encoding = "bcos"
    kind = "bcos"

    def __init__(self, net: BcosViTLayout) -> None:
        super().__init__()
        depth = len(net.blocks)
        cuts = (0, depth // 3, 2 * depth // 3, depth)
        self.stages = nn.ModuleDict(
            {
                "mid1": _StemStage(net.stem, net.proj, net.pos),
                **{
                    name: _BlockStage(list(net.blocks)[cuts[i] : cuts[i + 1]])
                    for i, name in enumerate(("mid2", "mid3", "final"))
                },
            }
        )
        self.head = _ViTHead(net.norm, net.head, net.logit_layer)
        self.source_key_map = identity_key_map(net, self)


_ARCHS = {
    "vit_s": dict(),
    "tiny_vit": dict(stem_channels=(8, 16), dim=16, depth=3, heads=2, mlp_dim=32),
}


def bcos_vit(arch: str, num_classes: int, **options) -> BcosViT:
    """`arch` in vit_s, tiny_vit; options override (stem_channels, dim, depth, heads, mlp_dim,
    positions, in_chans, b, max_out, logit_bias)."""
    return BcosViT(BcosViTLayout(num_classes=num_classes, **{**_ARCHS[arch], **options}))
