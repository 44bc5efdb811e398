"""Localisation losses (Rao et al. 2023, Eq. (3)-(6)) as registered objects, one file per loss, and
AIM's active-area loss (Alshami et al. 2025, Eq. (6), `active_area.py`).

``LOSSES`` is a mapping view of the registry `LOCALISATION_LOSSES` (``LOSSES[name](attributions, masks)`` gives the
per-image loss [N]; iterating gives the names in registration order: energy, l1, ppce, rrr, distill).
A new loss is one module with a function decorated by `register_loss`.

Soft masks. The paper's masks are binary (1 inside the union of the class's boxes); every loss also
takes masks with values in [0, 1] (segmentations, a teacher's maps, AIM's merged masks; the training
step's `mask_source`), read as per-pixel weights; each entry's ``soft_mask`` says how:

- Energy: EPG with the positive attribution of each pixel counted in proportion to its mask value,
  sum(m * a+) / sum(a+); a mask of constant c gives c.
- L1: the target of the normalised positive attribution at each pixel IS the mask value.
- PPCE: the mean of -log A-hat+ weighted by m, sum(m * nll) / sum(m) (0 for an all-zero mask).
- RRR*: out-of-mask pixels weighted by 1 - m: a pixel at 0.3 costs 0.7 of an outside pixel.
- Distillation (``distill``, for teacher maps): 1 - cosine similarity between the student's A-hat+
  (upsampled) and the mask (Parchami-Araghi et al. 2024, "Good Teachers Explain"); a soft mask is a
  target map, its scale does not matter.
"""

import warnings
from collections.abc import MutableMapping
from typing import Iterator

from rightfocus.losses.base import (
    LOCALISATION_LOSSES, LocalisationLoss, get_loss, localisation_loss, normalised_positive, register_loss,
)
from rightfocus.losses import energy, l1, ppce, rrr, distill  # noqa: F401,E401  (registration order)
from rightfocus.losses.active_area import active_area_loss, active_ratio, area_threshold
from rightfocus.losses.distill import distill_loss
from rightfocus.losses.energy import EPG_EPS, energy_loss
from rightfocus.losses.l1 import l1_loss
from rightfocus.losses.ppce import LOG_CLAMP, ppce_loss
from rightfocus.losses.rrr import rrr_loss



class _LossTable(MutableMapping):
    """``LOSSES``: the registry as a name -> loss mapping (``LOSSES[name](attributions, masks)``),
    iterated in registration order. Assigning a function registers it (label = its name); prefer
    `register_loss`, which also takes the label and the meaning of a soft mask."""

    def __getitem__(self, name: str) -> LocalisationLoss:
        return LOCALISATION_LOSSES[name]

    def __setitem__(self, name: str, fn) -> None:
        warnings.warn("LOSSES[name] = fn registers a loss without a label; use rightfocus.losses.register_loss",
                      DeprecationWarning, stacklevel=2)
        LOCALISATION_LOSSES.register(name, LocalisationLoss(name, name, fn), replace=True)

    def __delitem__(self, name: str) -> None:
        LOCALISATION_LOSSES.unregister(name)

    def __contains__(self, name: object) -> bool:
        return name in LOCALISATION_LOSSES

    def __iter__(self) -> Iterator[str]:
        return iter(LOCALISATION_LOSSES)

    def __len__(self) -> int:
        return len(LOCALISATION_LOSSES)

    def __repr__(self) -> str:
        return f"LOSSES{list(LOCALISATION_LOSSES)}"


#: the localisation losses by name: a mapping view of `LOCALISATION_LOSSES`
LOSSES = _LossTable()

__all__ = [
    "EPG_EPS", "LOCALISATION_LOSSES", "LOG_CLAMP", "LOSSES", "LocalisationLoss", "active_area_loss", "active_ratio",
    "area_threshold", "distill_loss", "energy_loss", "get_loss", "l1_loss", "localisation_loss",
    "normalised_positive", "ppce_loss", "register_loss", "rrr_loss",
]
