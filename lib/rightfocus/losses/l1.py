"""L1 loss (Rao et al. 2023, Eq. (3)) on the positive part divided by the per-image max."""

from __future__ import annotations

from torch import Tensor

from rightfocus.losses.base import normalised_positive, prepare, register_loss, upsample


@register_loss("l1", "L1", soft_mask="the target of the normalised positive attribution at each pixel IS the mask value")
def l1_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Eq. (3): mean over pixels of |M - A-hat+| [N]."""
    a, m = prepare(attributions, masks)
    return (m - upsample(normalised_positive(a), m)).abs().flatten(1).mean(1)
