"""Energy loss (Rao et al. 2023, Eq. (6)): 1 - EPG of the raw attributions. Eq. (6) writes -EPG; the
two differ by a constant (same gradients). When the positive sum is < 1e-7 it is 1 - numerator."""

from __future__ import annotations

import torch
from torch import Tensor

from rightfocus.losses.base import prepare, register_loss, upsample

#: positive attribution sums below this make EPG degenerate (reference code's constant)
EPG_EPS = 1e-7


@register_loss("energy", "Energy", soft_mask="EPG with the positive attribution of each pixel counted in proportion "
               "to its mask value, sum(m * a+) / sum(a+); a mask of constant c gives c")
def energy_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """1 - EPG of the raw attributions upsampled to the masks (Eq. (6) up to a constant) [N]."""
    a, m = prepare(attributions, masks)
    positive = torch.relu(upsample(a, m))
    inside = (m * positive).flatten(1).sum(1)
    total = positive.flatten(1).sum(1)
    safe_total = torch.where(total < EPG_EPS, torch.ones_like(total), total)
    return torch.where(total < EPG_EPS, 1 - inside, 1 - inside / safe_total)
