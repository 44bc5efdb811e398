"""Building blocks of AIM (Alshami et al. 2025, Sec. 3): the binary Gumbel-softmax, the mask
estimator, the top-down feature branch, the per-stage classifier, the Gumbel temperature/noise
schedule and the edge-emphasised initialisation of App. D.5.

The binary Gumbel-softmax follows DynConv (Verelst & Tuytelaars 2020), which AIM adopts ([49]):
training adds logistic noise (the difference of two Gumbel samples), takes ``soft = sigmoid(x/t)``
and passes ``hard = (soft >= 0.5)`` forward with the gradient of ``soft`` (straight-through);
evaluation returns ``x >= 0`` without noise.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models.convnext import LayerNorm2d

__all__ = [
    "BinaryGumbel",
    "MaskEstimator",
    "TopDownBranch",
    "StageClassifier",
    "gumbel_schedule",
    "GUMBEL_SCHEDULES",
    "edge_emphasis_filter",
    "apply_edge_init",
]


class BinaryGumbel(nn.Module):
    """Element-wise binary Gumbel-softmax G of Eq. 2: logits [N,1,h,w] -> mask in {0,1}.

    ``temperature`` and ``noise`` are plain attributes set by the training schedule
    (`gumbel_schedule`); they are not part of the state dict because the schedule recomputes them
    from the epoch on resume.
    """

    def __init__(self, temperature: float = 1.0, noise: bool = True, eps: float = 1e-8) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"Gumbel temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.noise = bool(noise)
        self.eps = float(eps)

    def forward(self, logits: Tensor) -> Tensor:
        if not self.training:
            return (logits >= 0).to(logits.dtype)
        x = logits
        if self.noise:
            # logistic noise = difference of two Gumbel(0,1) samples (DynConv, eps 1e-8)
            u1, u2 = torch.rand_like(x), torch.rand_like(x)
            g1 = -torch.log(-torch.log(u1 + self.eps) + self.eps)
            g2 = -torch.log(-torch.log(u2 + self.eps) + self.eps)
            x = x + g1 - g2
        soft = torch.sigmoid(x / self.temperature)
        hard = (soft >= 0.5).to(soft.dtype)
        # straight-through: forward value is exactly `hard` (soft - soft.detach() == 0), gradient of soft
        return hard + (soft - soft.detach())

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, noise={self.noise}"


#: names accepted by `gumbel_schedule`
GUMBEL_SCHEDULES: tuple[str, ...] = ("fixed", "dynconv")


def gumbel_schedule(epoch: int, total: int, kind: str = "fixed", noise_off_fraction: float = 0.8,
                    milestones: tuple[float, float] = (0.3, 0.6)) -> tuple[float, bool]:
    """Gumbel temperature and noise switch for 0-based `epoch` of `total` (DynConv, Verelst & Tuytelaars 2020: 5.0 -> 2.5 -> 1.0 or fixed 1.0; noise off after 80 % of the epochs).

    ``fixed``: temperature 1.0. ``dynconv``: 5.0 before ``milestones[0]*total`` epochs, 2.5 before
    ``milestones[1]*total``, then 1.0 (DynConv steps the temperature at its learning-rate decay
    epochs 30/60 of 100). Noise is on for the first ``noise_off_fraction`` of the epochs and off
    for the rest (``epoch >= noise_off_fraction * total``).
    """
    if total <= 0 or not 0 <= epoch:
        raise ValueError(f"need 0 <= epoch and total > 0, got epoch={epoch}, total={total}")
    if kind == "fixed":
        temperature = 1.0
    elif kind == "dynconv":
        temperature = 5.0 if epoch < milestones[0] * total else 2.5 if epoch < milestones[1] * total else 1.0
    else:
        raise ValueError(f"unknown Gumbel schedule {kind!r}; choose one of {GUMBEL_SCHEDULES}")
    return temperature, epoch < noise_off_fraction * total


class _ResidualBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and ReLU plus identity (the paper only says "residual blocks
    that each utilize 3x3 convolutional layers"; the ResNet basic block is our choice)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
        )
        self.relu = nn.ReLU(inplace=True)  # a module, so hook-based rules (guided backprop) see it

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(x + self.body(x))


class MaskEstimator(nn.Module):
    """Mask estimator M of Eq. 1 (Sec. 3, Fig. 2): features [N,C,h,w] -> mask logits A [N,1,h',w'].

    3x3 conv (C -> width), three residual blocks of 3x3 convs, then an identity branch and a
    global-average-pooled branch (expanded back to h'xw') concatenated (2*width channels) and a
    1x1 conv to one channel. ``stride`` > 1 (bottom-up variant only, as in DynConv's mask unit)
    lets the estimator read a block's input and produce a mask at the block's output resolution.
    """

    def __init__(self, in_channels: int, width: int = 32, stride: int = 1, num_blocks: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*[_ResidualBlock(width) for _ in range(num_blocks)])
        self.out = nn.Conv2d(2 * width, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.stem(x))
        context = F.adaptive_avg_pool2d(h, 1).expand_as(h)
        return self.out(torch.cat([h, context], dim=1))


class TopDownBranch(nn.Module):
    """Feature branch T_l of Eq. 3: 1x1 conv (channel alignment to `width`), 3x3 conv (spatial
    refinement), LayerNorm over channels, GELU (Sec. 3, "Overall Architecture")."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 1),
            nn.Conv2d(width, width, 3, padding=1),
            LayerNorm2d(width, eps=1e-6),
            nn.GELU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class StageClassifier(nn.Module):
    """Classifier f_l / f_final of Eqs. 4-5: global average pooling, dropout, linear.

    (The paper does not describe the classifiers; pooling + linear is the usual head, and Table 4's
    "drop out rate 0.3" is applied here as ``dropout``.)
    """

    def __init__(self, width: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(self.dropout(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)))


def edge_emphasis_filter(size: int = 7) -> Tensor:
    """Spatial weighting of App. D.5 / Fig. 30 (a 7x7 filter there): grows with the Euclidean
    distance d from the kernel centre, ``(1 + d) / (1 + d_max)``: 1 at the corners, smallest (but
    non-zero, so the centre still learns) at the centre. The paper gives no formula; this one is
    our choice."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"edge_emphasis_filter needs an odd size >= 1 (a centred kernel), got {size}")
    c = (size - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    d = torch.sqrt((ys - c) ** 2 + (xs - c) ** 2)
    return ((1 + d) / (1 + d.max())).to(torch.float32)


@torch.no_grad()
def apply_edge_init(module: nn.Module) -> int:
    """Edge-emphasised initialisation (App. D.5): multiply every conv kernel larger than 1x1 in
    `module` by `edge_emphasis_filter` of its size, rescaled to unit root-mean-square so the
    weights' overall scale (the default init's variance) is kept. Returns the number of convs changed."""
    changed = 0
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d) and conv.kernel_size[0] > 1:
            kh, kw = conv.kernel_size
            if kh != kw:
                raise ValueError(f"edge init needs square kernels, got {conv.kernel_size}")
            profile = edge_emphasis_filter(kh).to(conv.weight)
            conv.weight.mul_(profile / profile.pow(2).mean().sqrt())
            changed += 1
    return changed

