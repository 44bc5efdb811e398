"""AIM's active-area loss (Alshami et al. 2025, Eq. (6)) and its threshold schedule (Appendix A.3).

Not a localisation loss (it reads the stage masks of an AIM model, not attribution maps), so it is not
in `LOCALISATION_LOSSES`.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor


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
