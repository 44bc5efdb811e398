"""Localisation losses (Rao et al. 2023, Eq. (3)-(6)) and AIM's active-area loss (Alshami et al. 2025, Eq. (6)).

Every localisation loss takes attributions at the TAP's resolution [N, h, w] and masks at the input
resolution [N, H, W] (1 inside the union of the class's boxes), applies its post-processing at the
tap's resolution, then bilinearly upsamples to the mask's size (``F.interpolate``, default
align_corners), in the reference code's order:

- Energy: raw attributions; loss = 1 - EPG (EPG on the positive part). Eq. (6) writes -EPG; the two
  differ by a constant (same gradients). When the positive sum is < 1e-7 it is 1 - numerator.
- L1 and PPCE: positive part divided by the per-image max (a map whose max is 0 stays 0).
- RRR*: signed attributions divided by the per-image max of |a| (same guard).

Each returns one value per image [N]; the training step reduces with `localisation_loss` (official:
SUM over the batch, while BCE is a mean; the paper's lambdas assume it).

Soft masks. The paper's masks are binary (1 inside the union of the class's boxes); every loss also
takes masks with values in [0, 1] (segmentations, a teacher's maps, AIM's merged masks; the training
step's `mask_source`), read as per-pixel weights:

- Energy: EPG with the positive attribution of each pixel counted in proportion to its mask value,
  sum(m * a+) / sum(a+); a mask of constant c gives c.
- L1: the target of the normalised positive attribution at each pixel IS the mask value.
- PPCE: the mean of -log A-hat+ weighted by m, sum(m * nll) / sum(m) (0 for an all-zero mask).
- RRR*: out-of-mask pixels weighted by 1 - m: a pixel at 0.3 costs 0.7 of an outside pixel.
- Distillation (``distill``, for teacher maps): 1 - cosine similarity between the student's A-hat+
  (upsampled) and the mask, the explanation-distillation objective (Parchami-Araghi et al. 2024,
  "Good Teachers Explain"); a soft mask is a target map, its scale does not matter.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: positive attribution sums below this make EPG degenerate (reference code's constant)
EPG_EPS = 1e-7
#: PPCE clamps -log at this value, as torch's binary cross entropy does
LOG_CLAMP = 100.0


def _prepare(attributions: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    if attributions.dim() != 3 or masks.dim() != 3:
        raise ValueError(
            f"attributions must be [N, h, w] and masks [N, H, W], got {tuple(attributions.shape)} and "
            f"{tuple(masks.shape)} (squeeze a channel dimension first)"
        )
    if attributions.shape[0] != masks.shape[0]:
        raise ValueError(f"{attributions.shape[0]} attribution maps for {masks.shape[0]} masks: need one each")
    return attributions, masks.to(attributions.dtype)


def _upsample(maps: Tensor, like: Tensor) -> Tensor:
    if maps.shape[-2:] == like.shape[-2:]:
        return maps
    return F.interpolate(maps[:, None], size=like.shape[-2:], mode="bilinear")[:, 0]


def _divide_by_max(maps: Tensor, scale: Tensor) -> Tensor:
    """maps / per-image max of `scale`; maps whose max is 0 stay 0 (no NaN in values or gradients)."""
    peak = scale.flatten(1).amax(1)[:, None, None]
    return maps / torch.where(peak > 0, peak, torch.ones_like(peak))


def energy_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """1 - EPG of the raw attributions upsampled to the masks (Eq. (6) up to a constant) [N]."""
    a, m = _prepare(attributions, masks)
    positive = torch.relu(_upsample(a, m))
    inside = (m * positive).flatten(1).sum(1)
    total = positive.flatten(1).sum(1)
    safe_total = torch.where(total < EPG_EPS, torch.ones_like(total), total)
    return torch.where(total < EPG_EPS, 1 - inside, 1 - inside / safe_total)


def normalised_positive(attributions: Tensor) -> Tensor:
    """Positive part divided by its per-image max: A-hat+ of Eq. (3) and (4), at the given resolution."""
    positive = torch.relu(attributions)
    return _divide_by_max(positive, positive)


def l1_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Eq. (3): mean over pixels of |M - A-hat+| [N]."""
    a, m = _prepare(attributions, masks)
    return (m - _upsample(normalised_positive(a), m)).abs().flatten(1).mean(1)


def ppce_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Eq. (4): mean over in-mask pixels of -log A-hat+ (BCE with target 1, -log clamped at 100 as in
    ``torch.nn.BCELoss``); 0 for an empty mask [N]."""
    a, m = _prepare(attributions, masks)
    a_hat = _upsample(normalised_positive(a), m)
    # a pixel at exactly 0 costs LOG_CLAMP with a zero gradient (as ReLU gives it): clamp before the
    # log so that neither the value nor the gradient of the unused branch is inf / NaN
    log = torch.log(a_hat.clamp_min(torch.finfo(a_hat.dtype).tiny))
    nll = torch.where(a_hat > 0, -log, torch.full_like(log, LOG_CLAMP)).clamp(max=LOG_CLAMP)
    area = m.flatten(1).sum(1)
    # an empty mask costs 0; a soft mask divides by its own (possibly fractional) mass
    return (m * nll).flatten(1).sum(1) / torch.where(area > 0, area, torch.ones_like(area))


def rrr_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Eq. (5), RRR*: sum over out-of-mask pixels of A-hat^2, A-hat = a / max|a| (signed) [N]."""
    a, m = _prepare(attributions, masks)
    a_hat = _upsample(_divide_by_max(a, a.abs()), m)
    return ((1 - m) * a_hat.square()).flatten(1).sum(1)


def distill_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Explanation distillation: 1 - cos(A-hat+, M) per image, A-hat+ the normalised positive
    attributions upsampled to the target maps M [N, H, W] in [0, 1] (e.g. a teacher's maps). A map
    or target that is all zero has no direction: its loss is 1 with a zero gradient [N]."""
    a, m = _prepare(attributions, masks)
    s = _upsample(normalised_positive(a), m).flatten(1)
    t = m.flatten(1)
    norms = s.norm(dim=1) * t.norm(dim=1)
    ok = norms > 0
    cos = (s * t).sum(1) / torch.where(ok, norms, torch.ones_like(norms))
    return 1 - torch.where(ok, cos, torch.zeros_like(cos))


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "energy": energy_loss,
    "l1": l1_loss,
    "ppce": ppce_loss,
    "rrr": rrr_loss,
    "distill": distill_loss,
}


def localisation_loss(name: str, attributions: Tensor, masks: Tensor, reduction: str = "sum") -> Tensor:
    """The named loss reduced over the batch: ``sum`` (official code, default) or ``mean``."""
    if name not in LOSSES:
        raise ValueError(f"unknown localisation loss {name!r}; choose one of {list(LOSSES)}")
    per_image = LOSSES[name](attributions, masks)
    if reduction == "sum":
        return per_image.sum()
    if reduction == "mean":
        return per_image.mean()
    raise ValueError(f"unknown reduction {reduction!r}; choose 'sum' or 'mean'")


def active_ratio(mask: Tensor) -> Tensor:
    """Fraction of active (== 1) elements per image of a stage's mask [N, ...] -> [N]."""
    mask = mask if mask.is_floating_point() else mask.float()
    return mask.flatten(1).mean(1)


def active_area_loss(masks: Sequence[Tensor], tau: float | Sequence[float]) -> Tensor:
    """AIM Eq. (6): sum over stages i of (r_i - tau_i)^2.

    r_i is the active-area ratio of stage i's binary mask computed per image and averaged over the batch
    (the paper leaves the batch reduction open; fixed here so that runs are comparable). The masks are
    straight-through binary masks, so the gradient reaches the mask estimators. `tau` is one threshold
    for every stage or one per stage.
    """
    if len(masks) == 0:
        raise ValueError("active_area_loss needs at least one stage mask")
    taus = [float(tau)] * len(masks) if isinstance(tau, (int, float)) else [float(t) for t in tau]
    if len(taus) != len(masks):
        raise ValueError(f"{len(taus)} thresholds for {len(masks)} stage masks: give one per stage or a single one")
    return sum((active_ratio(m).mean() - t) ** 2 for m, t in zip(masks, taus))


def area_threshold(
    epoch: int, start_epoch: int, anneal_epochs: int, target: float, initial: float = 1.0
) -> float:
    """AIM Appendix A.3 / Fig. 9: the active-area threshold at `epoch` (0-based).

    `initial` until `start_epoch`, then linear, reaching `target` at ``start_epoch + anneal_epochs``
    and held there. ``anneal_epochs = 0`` jumps to `target` at `start_epoch`.
    """
    if anneal_epochs < 0:
        raise ValueError(f"anneal_epochs must be >= 0, got {anneal_epochs}")
    if epoch < start_epoch:
        return float(initial)
    if anneal_epochs == 0 or epoch >= start_epoch + anneal_epochs:
        return float(target)
    return float(initial + (target - initial) * (epoch - start_epoch) / anneal_epochs)
