"""`LocalisationLoss`: one localisation loss (Rao et al. 2023, Eq. (3)-(6)) as a registered object;
`LOCALISATION_LOSSES`: the registry every consumer reads (run configs, grids, `Guide`, training, figures).

Every localisation loss takes attributions at the TAP's resolution [N, h, w] and masks at the input
resolution [N, H, W] in [0, 1] (1 inside the union of the class's boxes; soft values are per-pixel
weights, see each loss's ``soft_mask``), applies its post-processing at the tap's resolution, then
bilinearly upsamples to the mask's size (``F.interpolate``, default align_corners), in the reference
code's order, and returns one value per image [N]. The training step reduces with `localisation_loss`
(official: SUM over the batch, while BCE is a mean; the paper's lambdas assume it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from rightfocus.registry import Registry

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class LocalisationLoss:
    """A registered localisation loss: its name (run configs, results rows), its label (plots and
    tables), the per-image function ``fn(attributions [N, h, w], masks [N, H, W]) -> [N]`` and what a
    soft mask (values in [0, 1]) means for it. Calling the entry calls `fn`."""

    name: str
    label: str
    fn: LossFn
    soft_mask: str = ""

    def __call__(self, attributions: Tensor, masks: Tensor) -> Tensor:
        return self.fn(attributions, masks)


LOCALISATION_LOSSES: Registry[LocalisationLoss] = Registry(
    "localisation loss",
    "write a per-image function (attributions [N, h, w], masks [N, H, W]) -> [N] and decorate it with "
    "@register_loss(name, label) (docs/extending.md, 'Add a localisation loss')",
)


def register_loss(name: str, label: str, soft_mask: str = "") -> Callable[[LossFn], LossFn]:
    """Decorator: register the per-image loss function under `name` (returns the function unchanged)."""

    def add(fn: LossFn) -> LossFn:
        LOCALISATION_LOSSES.register(name, LocalisationLoss(name, label, fn, soft_mask))
        return fn

    return add


def get_loss(name: str) -> LocalisationLoss:
    """The registered loss `name` (`rightfocus.registry.UnknownName`, a ValueError, otherwise)."""
    return LOCALISATION_LOSSES[name]


def localisation_loss(name: str, attributions: Tensor, masks: Tensor, reduction: str = "sum") -> Tensor:
    """The named loss reduced over the batch: ``sum`` (official code, default) or ``mean``."""
    per_image = get_loss(name)(attributions, masks)
    if reduction == "sum":
        return per_image.sum()
    if reduction == "mean":
        return per_image.mean()
    raise ValueError(f"unknown reduction {reduction!r}; choose 'sum' or 'mean'")


# ---- shared post-processing ---------------------------------------------------------------------

def prepare(attributions: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Check the shapes ([N, h, w] maps, [N, H, W] masks) and give the masks the maps' dtype."""
    if attributions.dim() != 3 or masks.dim() != 3:
        raise ValueError(
            f"attributions must be [N, h, w] and masks [N, H, W], got {tuple(attributions.shape)} and "
            f"{tuple(masks.shape)} (squeeze a channel dimension first)"
        )
    if attributions.shape[0] != masks.shape[0]:
        raise ValueError(f"{attributions.shape[0]} attribution maps for {masks.shape[0]} masks: need one each")
    return attributions, masks.to(attributions.dtype)


def upsample(maps: Tensor, like: Tensor) -> Tensor:
    """Bilinear upsampling of maps [N, h, w] to the size of `like` [N, H, W]."""
    if maps.shape[-2:] == like.shape[-2:]:
        return maps
    return F.interpolate(maps[:, None], size=like.shape[-2:], mode="bilinear")[:, 0]


def divide_by_max(maps: Tensor, scale: Tensor) -> Tensor:
    """maps / per-image max of `scale`; maps whose max is 0 stay 0 (no NaN in values or gradients)."""
    peak = scale.flatten(1).amax(1)[:, None, None]
    return maps / torch.where(peak > 0, peak, torch.ones_like(peak))


def normalised_positive(attributions: Tensor) -> Tensor:
    """Positive part divided by its per-image max: A-hat+ of Eq. (3) and (4), at the given resolution."""
    positive = torch.relu(attributions)
    return divide_by_max(positive, positive)
