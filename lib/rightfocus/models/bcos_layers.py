"""B-cos layers (Boehle et al., B-cos v2) and the explanation mode that model guidance needs.

Every layer here is *dynamic linear*: ``out = s(x) * lin(x)`` with ``lin`` linear in ``x`` and a
dynamic scale ``s(x)`` (B-cos: ``|cos|^(B-1)``, norms: ``1/std``, attention: the softmax weights).
In `explanation_mode` the scales are constants for the derivative, so the input gradient is the
dynamic linear map ``W(x)`` and ``sum(W(x) * x) + logit_bias`` equals the logit exactly
(Rao et al. 2023, Sec. 3.2, "B-cos").

Guidance differentiates that explanation w.r.t. the parameters, and there the scales must stay in the
graph (FACTS.md "Exactness of the guidance gradient"). So the switch is read at BACKWARD time: the
scale passes through `_ScaleGate`, an identity whose backward returns no gradient while its owner is
explaining and the full gradient otherwise. Computing the explanation with
``autograd.grad(..., create_graph=True)`` inside the context and calling ``loss.backward()`` outside
then yields the exact derivative of "parameters -> explanation -> loss". The gate's backward uses
only differentiable ops, so double backward works.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: the fixed logit bias of the official guidance B-cos models: log(0.001 / 0.999)
DEFAULT_LOGIT_BIAS = math.log(0.001 / 0.999)
#: added under the square root of patch norms (B-cos v2)
PATCH_NORM_EPS = 1e-6


class DynamicScale(nn.Module):
    """Base for modules with a dynamic scale; `explaining` is toggled by `explanation_mode`."""

    explaining: bool = False

    def dynamic(self, scale: Tensor) -> Tensor:
        """`scale` unchanged in value; constant for gradients taken while `self.explaining`."""
        if not scale.requires_grad:
            return scale
        return _ScaleGate.apply(scale, self)


class _ScaleGate(torch.autograd.Function):
    """Identity; its backward consults the owner's flag when it RUNS, not when the graph was built."""

    @staticmethod
    def forward(ctx, scale: Tensor, owner: DynamicScale) -> Tensor:  # type: ignore[override]
        ctx.owner = owner
        return scale.view_as(scale)  # no copy; nothing modifies it in place

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        if ctx.owner.explaining:
            return None, None
        return grad, None


@contextmanager
def explanation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Treat every dynamic scale in `model` as constant for gradients computed inside the block.

    Models without dynamic scales (vanilla, X-DNN) are unaffected, so callers need not branch.
    Usage::

        with explanation_mode(model):
            logits, acts = model.forward_taps(x, [tap])
            g = torch.autograd.grad(sel.sum(), acts[tap], create_graph=True)[0]
        loss(g * acts[tap]).backward()   # outside: exact gradient w.r.t. the parameters
    """
    owners = [m for m in model.modules() if isinstance(m, DynamicScale)]
    previous = [m.explaining for m in owners]
    for m in owners:
        m.explaining = True
    try:
        yield model
    finally:
        for m, was in zip(owners, previous):
            m.explaining = was


def _bcos_scale(lin: Tensor, norm: Tensor, b: float) -> Tensor:
    """|cos(x, w)|^(B-1) * (1 / 1): with unit-norm w, cos = lin / ||x_patch||."""
    cos = lin.abs() / norm
    return cos if b == 2 else cos.pow(b - 1)


class BcosConv2d(DynamicScale):
    """B-cos convolution: unit-norm weights, no bias, ``out = lin * |cos|^(B-1)``; optional MaxOut.

    ``||x_patch|| = sqrt(sum over the kernel window and channels of x^2 + 1e-6)`` (B-cos v2).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        b: float = 2.0,
        max_out: int = 1,
    ) -> None:
        super().__init__()
        if b < 1 or max_out < 1:
            raise ValueError(f"need b >= 1 and max_out >= 1, got b={b}, max_out={max_out}")
        self.linear = nn.Conv2d(in_channels, out_channels * max_out, kernel_size, stride, padding, bias=False)
        self.out_channels, self.b, self.max_out = out_channels, float(b), max_out

    def forward(self, x: Tensor) -> Tensor:
        conv = self.linear
        w = conv.weight / conv.weight.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        lin = F.conv2d(x, w, None, conv.stride, conv.padding)
        if self.max_out > 1:
            lin = lin.unflatten(1, (self.out_channels, self.max_out)).amax(dim=2)
        if self.b == 1:
            return lin
        ones = x.new_ones(1, 1, *conv.kernel_size)
        norm = (F.conv2d(x.pow(2).sum(1, keepdim=True), ones, None, conv.stride, conv.padding) + PATCH_NORM_EPS).sqrt()
        return lin * self.dynamic(_bcos_scale(lin, norm, self.b))


class BcosLinear(DynamicScale):
    """B-cos linear layer over the last dimension (tokens); same rule as `BcosConv2d`."""

    def __init__(self, in_features: int, out_features: int, b: float = 2.0, max_out: int = 1) -> None:
        super().__init__()
        if b < 1 or max_out < 1:
            raise ValueError(f"need b >= 1 and max_out >= 1, got b={b}, max_out={max_out}")
        self.linear = nn.Linear(in_features, out_features * max_out, bias=False)
        self.out_features, self.b, self.max_out = out_features, float(b), max_out

    def forward(self, x: Tensor) -> Tensor:
        w = self.linear.weight / self.linear.weight.norm(dim=1, keepdim=True)
        lin = F.linear(x, w)
        if self.max_out > 1:
            lin = lin.unflatten(-1, (self.out_features, self.max_out)).amax(dim=-1)
        if self.b == 1:
            return lin
        norm = (x.pow(2).sum(-1, keepdim=True) + PATCH_NORM_EPS).sqrt()
        return lin * self.dynamic(_bcos_scale(lin, norm, self.b))


class UncenteredBatchNorm2d(DynamicScale):
    """Batch norm without centring and without bias: ``x / sqrt(var + eps) * weight`` (B-cos v2).

    Training uses the batch variance (and updates ``running_var``), evaluation the running one.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            var = x.var(dim=(0, 2, 3), unbiased=False)
            n = x.numel() // x.shape[1]
            with torch.no_grad():
                unbiased = var.detach() * (n / max(n - 1, 1))
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * unbiased.to(self.running_var))
                self.num_batches_tracked += 1
        else:
            var = self.running_var.to(x.dtype)
        inv_std = self.dynamic((var + self.eps).rsqrt())
        return x * (inv_std * self.weight).view(1, -1, 1, 1)


class BcosLayerNorm(DynamicScale):
    """Layer norm over the last dimension without bias: ``(x - mean) / sqrt(var + eps) * weight``.

    Centring is linear, so it keeps the layer dynamic linear; the bias is dropped because it would
    add a term no input contribution accounts for.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        centred = x - x.mean(-1, keepdim=True)
        var = centred.pow(2).mean(-1, keepdim=True)
        return centred * self.dynamic((var + self.eps).rsqrt()) * self.weight


class LogitBias(nn.Module):
    """Adds a fixed (non-trainable) bias to every logit; stored as a buffer so checkpoints keep it."""

    def __init__(self, value: float = DEFAULT_LOGIT_BIAS) -> None:
        super().__init__()
        self.register_buffer("bias", torch.tensor(float(value)))

    def forward(self, logits: Tensor) -> Tensor:
        return logits + self.bias.to(logits.dtype)


class BcosConvHead(nn.Module):
    """Classifier of B-cos CNNs: 1x1 B-cos conv BEFORE global average pooling, then the logit bias."""

    def __init__(self, fc: BcosConv2d, logit: LogitBias) -> None:
        super().__init__()
        self.fc, self.logit = fc, logit

    def forward(self, h: Tensor) -> Tensor:
        return self.logit(F.adaptive_avg_pool2d(self.fc(h), 1).flatten(1))


class BcosTappedMixin:
    """Shared by the B-cos models: the fixed logit bias the contributions add up to."""

    @property
    def logit_bias(self) -> float:
        return float(self.head.logit.bias)  # type: ignore[attr-defined]
