"""B-cos ViT with a convolutional stem: B-cos v2's ``vitc_s_patch1_14`` (the B-cos "Simple ViT-C").

The definition is B-cos-v2's own (``bcos.models.vit``, checked against the package in
tests/test_release_bcos.py): a stem of 3x3 B-cos convs [48, 96, 192, 384] (stride 2 where the width
grows), each followed by a centred layer norm over (C, H, W) without bias; 1x1 patches of the
14x14 stem map (224 px) projected by a B-cos linear layer to dim 384; 2-D sin-cos positions ADDED
to the tokens; 11 pre-norm encoder blocks (12 minus one for the conv stem), 6 heads, MLP 1536, no
activations; attention ``softmax(q k^T / sqrt(d)) v`` with q, k, v from a PLAIN linear layer (not
B-cos) and a B-cos output projection; mean over tokens, then layer norm and a B-cos linear
classifier and a fixed logit bias. Layer norms have no bias.

Attention is written out because the fused scaled-dot-product kernels have no double backward, and
guidance differentiates the explanation. The softmax weights are the attention's dynamic scale:
constant in explanation mode (B-cos v2 detaches q and k). The added positions are a constant that no
input contribution accounts for, so here ``sum(W(x) * x)`` is the logit minus the logit bias minus
the positions' share (as in B-cos v2).

Module names follow B-cos v2 (``to_patch_embedding.conv_stem.0.linear.weight``,
``transformer.encoder_0.attn.to_qkv.weight``, ``linear_head.linear.linear.weight``); the release
file wraps the model in a sequential with the logit layer, so its keys carry a ``0.`` prefix, which
`weights.read_state_dict` removes.

Taps (tokens reshaped to ``[N, C, h, w]`` so they attribute like conv maps): mid1 = after the stem
(projection + positions); mid2 / mid3 / final = after encoder blocks ``depth//3``, ``2*depth//3``,
``depth``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import Tensor, nn

from .bcos_layers import (
    DEFAULT_LOGIT_BIAS,
    BcosConv2d,
    BcosLayerNorm,
    BcosLayerNorm2d,
    BcosLinear,
    BcosTappedMixin,
    DynamicScale,
    LogitBias,
)
from .taps import TappedModel
from .weights import identity_key_map


def sincos_positions(h: int, w: int, dim: int, dtype: torch.dtype, device: torch.device,
                     temperature: float = 10_000) -> Tensor:
    """2-D sine-cosine position embedding ``[h*w, dim]`` (row-major tokens; x then y, sin then cos).

    Computed in torch's default dtype and then cast, as B-cos v2 (Simple ViT) does.
    """
    if dim % 4:
        raise ValueError(f"sin-cos positions need dim divisible by 4, got {dim}")
    y, x = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    omega = torch.arange(dim // 4, device=device) / (dim // 4 - 1)
    omega = 1.0 / (temperature**omega)
    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1).to(dtype)


class _Attention(DynamicScale):
    """Pre-norm multi-head self-attention; q, k, v from a plain bias-free linear layer."""

    def __init__(self, dim: int, heads: int, b: float, max_out: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.norm = BcosLayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = BcosLinear(dim, dim, b=b, max_out=max_out)

    def forward(self, x: Tensor) -> Tensor:
        qkv = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in qkv)  # [N, heads, L, d]
        attn = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = torch.matmul(self.dynamic(attn), v)
        return self.to_out(out.transpose(1, 2).flatten(2))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, mlp_dim: int, b: float, max_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(OrderedDict(
            norm=BcosLayerNorm(dim),
            linear1=BcosLinear(dim, mlp_dim, b=b, max_out=max_out),
            linear2=BcosLinear(mlp_dim, dim, b=b, max_out=max_out),
        ))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class _Encoder(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, b: float, max_out: int) -> None:
        super().__init__()
        self.attn = _Attention(dim, heads, b, max_out)
        self.ff = _FeedForward(dim, mlp_dim, b, max_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.attn(x) + x
        return self.ff(x) + x


class BcosViTLayout(nn.Module):
    """Upstream-shaped tree: ``to_patch_embedding.{conv_stem, linear}``, ``transformer.encoder_i``,
    ``linear_head.{norm, linear}``, ``logit_layer`` (no state)."""

    def __init__(
        self,
        num_classes: int,
        stem_channels: Sequence[int] = (48, 96, 192, 384),
        dim: int = 384,
        depth: int = 11,
        heads: int = 6,
        mlp_dim: int = 1536,
        in_chans: int = 6,
        b: float = 2.0,
        max_out: int = 1,
        logit_bias: float = DEFAULT_LOGIT_BIAS,
    ) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"the taps mid2/mid3/final need depth >= 3, got {depth}")
        stem, ch = [], in_chans
        for c in stem_channels:  # conv, norm, (identity activation): B-cos v2's indices 0, 1, 2, ...
            conv = BcosConv2d(ch, c, 3, 2 if c > ch else 1, 1, b=b, max_out=max_out)
            stem += [conv, BcosLayerNorm2d(c), nn.Identity()]
            ch = c
        self.to_patch_embedding = nn.Sequential(OrderedDict(
            conv_stem=nn.Sequential(*stem), linear=BcosLinear(ch, dim, b=b, max_out=max_out)
        ))
        self.transformer = nn.Sequential(OrderedDict(
            (f"encoder_{i}", _Encoder(dim, heads, mlp_dim, b, max_out)) for i in range(depth)
        ))
        self.linear_head = nn.Sequential(OrderedDict(
            norm=BcosLayerNorm(dim), linear=BcosLinear(dim, num_classes, b=b, max_out=max_out)
        ))
        self.logit_layer = LogitBias(logit_bias)


def _to_tokens(h: Tensor) -> Tensor:
    return h.flatten(2).transpose(1, 2)


def _to_map(tokens: Tensor, h: int, w: int) -> Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


class _StemStage(nn.Module):
    """Conv stem, 1x1 patches projected to tokens, positions added; returned as a map."""

    def __init__(self, conv_stem: nn.Module, linear: BcosLinear) -> None:
        super().__init__()
        self.conv_stem, self.linear = conv_stem, linear

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_stem(x)
        tokens = self.linear(h.permute(0, 2, 3, 1))  # [N, h, w, dim]
        n, hh, ww, dim = tokens.shape
        tokens = tokens.reshape(n, hh * ww, dim) + sincos_positions(hh, ww, dim, tokens.dtype, tokens.device)
        return _to_map(tokens, hh, ww)


class _BlockStage(nn.Module):
    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, h: Tensor) -> Tensor:
        return _to_map(self.blocks(_to_tokens(h)), h.shape[2], h.shape[3])


class _ViTHead(nn.Module):
    """Mean over tokens, then layer norm, B-cos linear classifier and the logit bias."""

    def __init__(self, linear_head: nn.Sequential, logit: LogitBias) -> None:
        super().__init__()
        self.linear_head, self.logit = linear_head, logit

    def forward(self, h: Tensor) -> Tensor:
        return self.logit(self.linear_head(_to_tokens(h).mean(dim=1)))


class BcosViT(BcosTappedMixin, TappedModel):
    """B-cos ViT-C with the taps documented in the module docstring."""

    input_encoding = "bcos"
    kind = "bcos"

    def __init__(self, net: BcosViTLayout) -> None:
        super().__init__()
        blocks = list(net.transformer)
        depth = len(blocks)
        cuts = (0, depth // 3, 2 * depth // 3, depth)
        self.stages = nn.ModuleDict(
            {
                "mid1": _StemStage(net.to_patch_embedding.conv_stem, net.to_patch_embedding.linear),
                **{name: _BlockStage(blocks[cuts[i] : cuts[i + 1]])
                   for i, name in enumerate(("mid2", "mid3", "final"))},
            }
        )
        self.head = _ViTHead(net.linear_head, net.logit_layer)
        self.source_key_map = identity_key_map(net, self)


_ARCHS = {
    "vit_s": dict(),
    "tiny_vit": dict(stem_channels=(8, 16), dim=16, depth=3, heads=2, mlp_dim=32),
}


def bcos_vit(arch: str, num_classes: int, **options) -> BcosViT:
    """`arch` in vit_s (B-cos v2's vitc_s_patch1_14), tiny_vit; options override (stem_channels, dim,
    depth, heads, mlp_dim, in_chans, b, max_out, logit_bias)."""
    return BcosViT(BcosViTLayout(num_classes=num_classes, **{**_ARCHS[arch], **options}))
