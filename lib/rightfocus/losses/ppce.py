"""Per-pixel cross-entropy (Rao et al. 2023, Eq. (4)) on the positive part divided by the per-image max."""

from __future__ import annotations

import torch
from torch import Tensor

from rightfocus.losses.base import normalised_positive, prepare, register_loss, upsample

#: PPCE clamps -log at this value, as torch's binary cross entropy does
LOG_CLAMP = 100.0


@register_loss("ppce", "PPCE", soft_mask="the mean of -log A-hat+ weighted by m, sum(m * nll) / sum(m) "
               "(0 for an all-zero mask)")
def ppce_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Eq. (4): mean over in-mask pixels of -log A-hat+ (BCE with target 1, -log clamped at 100 as in
    ``torch.nn.BCELoss``); 0 for an empty mask [N]."""
    a, m = prepare(attributions, masks)
    a_hat = upsample(normalised_positive(a), m)
    # a pixel at exactly 0 costs LOG_CLAMP with a zero gradient (as ReLU gives it): clamp before the
    # log so that neither the value nor the gradient of the unused branch is inf / NaN
    log = torch.log(a_hat.clamp_min(torch.finfo(a_hat.dtype).tiny))
    nll = torch.where(a_hat > 0, -log, torch.full_like(log, LOG_CLAMP)).clamp(max=LOG_CLAMP)
    area = m.flatten(1).sum(1)
    # an empty mask costs 0; a soft mask divides by its own (possibly fractional) mass
    return (m * nll).flatten(1).sum(1) / torch.where(area > 0, area, torch.ones_like(area))
