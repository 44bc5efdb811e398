"""RRR* (Rao et al. 2023, Eq. (5)): "right for the right reasons" on signed attributions divided by
the per-image max of |a|."""

from __future__ import annotations

from torch import Tensor

from rightfocus.losses.base import divide_by_max, prepare, register_loss, upsample


@register_loss("rrr", "RRR*", soft_mask="out-of-mask pixels weighted by 1 - m: a pixel at 0.3 costs 0.7 of an "
               "outside pixel")
def rrr_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Eq. (5), RRR*: sum over out-of-mask pixels of A-hat^2, A-hat = a / max|a| (signed) [N]."""
    a, m = prepare(attributions, masks)
    a_hat = upsample(divide_by_max(a, a.abs()), m)
    return ((1 - m) * a_hat.square()).flatten(1).sum(1)
