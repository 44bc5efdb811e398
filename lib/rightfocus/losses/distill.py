"""Explanation distillation (``distill``, for teacher maps): 1 - cosine similarity between the
student's A-hat+ (upsampled) and the target map (Parchami-Araghi et al. 2024, "Good Teachers Explain")."""

from __future__ import annotations

import torch
from torch import Tensor

from rightfocus.losses.base import normalised_positive, prepare, register_loss, upsample


@register_loss("distill", "Distillation", soft_mask="a soft mask is a target map (e.g. a teacher's maps); its scale "
               "does not matter")
def distill_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Explanation distillation: 1 - cos(A-hat+, M) per image, A-hat+ the normalised positive
    attributions upsampled to the target maps M [N, H, W] in [0, 1] (e.g. a teacher's maps). A map
    or target that is all zero has no direction: its loss is 1 with a zero gradient [N]."""
    a, m = prepare(attributions, masks)
    s = upsample(normalised_positive(a), m).flatten(1)
    t = m.flatten(1)
    norms = s.norm(dim=1) * t.norm(dim=1)
    ok = norms > 0
    cos = (s * t).sum(1) / torch.where(ok, norms, torch.ones_like(norms))
    return 1 - torch.where(ok, cos, torch.zeros_like(cos))
