"""B-cos layers (Boehle et al., B-cos v2) and the explanation mode that model guidance needs.

Every layer here is *dynamic linear*: ``out = s(x) * lin(x)`` with ``lin`` linear in ``x`` and a
dynamic scale ``s(x)`` (B-cos: ``|cos|^(B-1)``, norms: ``1/std``, attention: the softmax weights).
In `explanation_mode` the scales are constants for the derivative, so the input gradient is the
dynamic linear map ``W(x)`` and ``sum(W(x) * x) + logit_bias`` equals the logit exactly
(Rao et al. 2023, Sec. 3.2, "B-cos"; the B-cos ViT adds constant positions, whose share is missing
from the sum, as in B-cos v2). The layers compute what B-cos v2's own modules (the ``bcos``
package) compute, operation for operation, so release checkpoints give the same numbers.

Guidance differentiates that explanation w.r.t. the parameters, and there the scales must stay in the
graph (checked with finite differences on a float64 B-cos MLP: both shortcuts miss the exact derivative). So the switch is read at BACKWARD time: the
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

#: the fixed logit bias of the official guidance B-cos models: log(0.001 / 0.999) (= B-cos v2's
#: default -log(num_classes - 1) at 1000 classes)
DEFAULT_LOGIT_BIAS = math.log(0.001 / 0.999)
#: added under the square root of conv patch norms (B-cos v2)
PATCH_NORM_EPS = 1e-6
#: added to the token norm of B-cos linear layers (B-cos v2)
LINEAR_NORM_EPS = 1e-12


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
    """|cos(x, w)|^(B-1): with unit-norm w, cos = lin / ||x||; B-cos v2 adds 1e-6 to |cos| when B != 2."""
    if b == 2:
        return lin.abs() / norm
    return ((lin / norm).abs() + 1e-6).pow(b - 1)


class BcosConv2d(DynamicScale):
    """B-cos convolution: unit-norm weights, no bias, ``out = lin * |cos|^(B-1)``; optional MaxOut.

    ``||x_patch|| = sqrt(sum over the kernel window and channels of x^2 + 1e-6)`` (B-cos v2), the
    window sum taken as the window mean times its size, as B-cos v2 does.
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
        w = conv.weight / torch.linalg.vector_norm(conv.weight, dim=(1, 2, 3), keepdim=True)
        lin = F.conv2d(x, w, None, conv.stride, conv.padding)
        if self.max_out > 1:
            lin = lin.unflatten(1, (self.out_channels, self.max_out)).amax(dim=2)
        if self.b == 1:
            return lin
        window = conv.kernel_size[0] * conv.kernel_size[1]
        squares = F.avg_pool2d(x.pow(2).sum(1, keepdim=True), conv.kernel_size, conv.stride, conv.padding)
        norm = (squares * window + PATCH_NORM_EPS).sqrt()
        return lin * self.dynamic(_bcos_scale(lin, norm, self.b))


class BcosLinear(DynamicScale):
    """B-cos linear layer over the last dimension (tokens): ``||x|| + 1e-12`` as the norm (B-cos v2)."""

    def __init__(self, in_features: int, out_features: int, b: float = 2.0, max_out: int = 1) -> None:
        super().__init__()
        if b < 1 or max_out < 1:
            raise ValueError(f"need b >= 1 and max_out >= 1, got b={b}, max_out={max_out}")
        self.linear = nn.Linear(in_features, out_features * max_out, bias=False)
        self.out_features, self.b, self.max_out = out_features, float(b), max_out

    def forward(self, x: Tensor) -> Tensor:
        w = self.linear.weight / torch.linalg.vector_norm(self.linear.weight, dim=1, keepdim=True)
        lin = F.linear(x, w)
        if self.max_out > 1:
            lin = lin.unflatten(-1, (self.out_features, self.max_out)).amax(dim=-1)
        if self.b == 1:
            return lin
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) + LINEAR_NORM_EPS
        return lin * self.dynamic(_bcos_scale(lin, norm, self.b))


class UncenteredBatchNorm2d(DynamicScale, nn.BatchNorm2d):
    """Batch norm without centring and without bias: ``x / sqrt(var + eps) * weight`` (B-cos v2).

    A `nn.BatchNorm2d` whose ``bias`` is None, as B-cos v2's, so its state dict carries the same
    keys (``weight``, ``running_mean`` (kept, never used), ``running_var``, ``num_batches_tracked``).
    Training normalises with the biased batch variance and moves ``running_var`` towards that BIASED
    variance (B-cos v2; torch's own batch norm would use the unbiased one); evaluation uses
    ``running_var``. ``momentum=None`` is the cumulative average, as in `nn.BatchNorm2d`.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.bias = None  # type: ignore[assignment]  # registered parameter set to None: not in the state dict

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"UncenteredBatchNorm2d takes [N, C, H, W], got shape {tuple(x.shape)}")
        if self.training:
            var = x.var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_var.copy_((1 - factor) * self.running_var + factor * var.detach().to(self.running_var))
        else:
            var = self.running_var.to(x.dtype)
        std = self.dynamic((var + self.eps).sqrt())
        return self.weight.view(1, -1, 1, 1) * (x / std.view(1, -1, 1, 1))


class BcosLayerNorm(DynamicScale):
    """Layer norm over the last dimension without bias: ``(x - mean) / sqrt(var + eps) * weight``
    (B-cos v2's transformer norm). Centring is linear, so the layer stays dynamic linear."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        var, mean = torch.var_mean(x, dim=-1, unbiased=False, keepdim=True)
        return self.weight * ((x - mean) / self.dynamic((var + self.eps).sqrt()))


class BcosLayerNorm2d(DynamicScale):
    """Layer norm of a conv map over (C, H, W) together, per-channel weight, no bias: B-cos v2's
    ViT stem norm (a one-group `nn.GroupNorm` without bias; state dict key ``weight`` only)."""

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"BcosLayerNorm2d takes [N, C, H, W], got shape {tuple(x.shape)}")
        var, mean = torch.var_mean(x, dim=(1, 2, 3), unbiased=False, keepdim=True)
        return self.weight.view(1, -1, 1, 1) * ((x - mean) / self.dynamic((var + self.eps).sqrt()))


class LogitBias(nn.Module):
    """Adds a fixed bias to every logit. A plain float attribute, as B-cos v2's ``LogitLayer``: not a
    parameter, not in the state dict (the model's configuration sets it)."""

    def __init__(self, value: float = DEFAULT_LOGIT_BIAS) -> None:
        super().__init__()
        self.logit_bias = float(value)

    def forward(self, logits: Tensor) -> Tensor:
        return logits + self.logit_bias

    def extra_repr(self) -> str:
        return f"logit_bias={self.logit_bias}"


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
        return self.head.logit.logit_bias  # type: ignore[attr-defined]
