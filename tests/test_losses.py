"""Localisation losses (Rao et al. 2023, Eq. (3)-(6)) on hand-made maps with hand-computed values,
edge cases (all-zero attributions, empty mask, whole-image mask), the post-process-then-upsample order,
gradcheck w.r.t. the attributions; AIM's active-area loss and threshold schedule."""

from __future__ import annotations

import math

import pytest
import torch

from rightfocus.losses import (
    LOSSES,
    active_area_loss,
    area_threshold,
    energy_loss,
    l1_loss,
    localisation_loss,
    ppce_loss,
    rrr_loss,
)


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)[None]


def close(value, expected):
    assert value.shape == (1,)
    assert float(value[0]) == pytest.approx(expected, abs=1e-12)


def test_energy_hand_values():
    close(energy_loss(t([[1, 2], [3, -4]]), t([[1, 0], [0, 0]])), 1 - 1 / 6)
    close(energy_loss(t([[1, 2], [3, -4]]), t([[1, 1], [1, 1]])), 0.0)  # mask = whole image
    close(energy_loss(t([[1, 2], [3, -4]]), t([[0, 0], [0, 0]])), 1.0)  # empty mask
    close(energy_loss(t([[0, 0], [0, 0]]), t([[1, 0], [0, 0]])), 1.0)  # all-zero attributions
    # positive sum below 1e-7: the reference returns 1 - numerator
    close(energy_loss(t([[1e-8, 0], [0, -3]]), t([[1, 0], [0, 0]])), 1 - 1e-8)


def test_l1_hand_values():
    close(l1_loss(t([[2, -1], [1, 0]]), t([[1, 0], [1, 1]])), (0 + 0 + 0.5 + 1) / 4)
    close(l1_loss(t([[0, 0], [0, 0]]), t([[1, 0], [1, 1]])), 3 / 4)  # all zero: a_hat = 0, not NaN
    close(l1_loss(t([[2, -1], [1, 0]]), t([[0, 0], [0, 0]])), (1 + 0 + 0.5 + 0) / 4)


def test_ppce_hand_values():
    close(ppce_loss(t([[1, 0.5], [0.25, -1]]), t([[1, 1], [1, 0]])), (0 + math.log(2) + math.log(4)) / 3)
    close(ppce_loss(t([[1, 0.5], [0.25, -1]]), t([[0, 0], [0, 0]])), 0.0)  # empty mask
    close(ppce_loss(t([[1, 0.5], [0.25, -1]]), t([[1, 1], [1, 1]])), (math.log(2) + math.log(4) + 100) / 4)
    close(ppce_loss(t([[0, 0], [0, 0]]), t([[1, 0], [0, 0]])), 100.0)  # -log 0 clamped as in BCELoss


def test_ppce_zero_pixel_costs_the_clamp_in_float32_too():
    a = torch.tensor([[[1.0, 0.0]]])
    m = torch.tensor([[[1.0, 1.0]]])
    assert float(ppce_loss(a, m)[0]) == pytest.approx(50.0)
    a.requires_grad_(True)
    ppce_loss(a, m).sum().backward()
    assert torch.isfinite(a.grad).all()


def test_rrr_hand_values():
    close(rrr_loss(t([[2, -4], [1, 0]]), t([[1, 0], [0, 0]])), 1 + 0.0625)
    close(rrr_loss(t([[2, -4], [1, 0]]), t([[1, 1], [1, 1]])), 0.0)  # mask = whole image
    close(rrr_loss(t([[0, 0], [0, 0]]), t([[0, 0], [0, 0]])), 0.0)  # all zero
    close(rrr_loss(t([[2, -4], [1, 0]]), t([[0, 0], [0, 0]])), 0.25 + 1 + 0.0625)


def test_post_processing_happens_before_upsampling():
    """Tap map [-1, 1] -> 4 px. Bilinear (align_corners=False) samples source x = -.25,.25,.75,1.25.
    Paper order: relu/max -> [0, 1] -> [0, .25, .75, 1]; L1 with a full mask = mean(1,.75,.25,0) = .5
    (upsampling first would give [0, 0, .5, 1] and .625)."""
    a = torch.tensor([[[-1.0, 1.0]]], dtype=torch.float64)
    m = torch.ones(1, 1, 4, dtype=torch.float64)
    close(l1_loss(a, m), 0.5)
    # Energy upsamples the RAW map: [-1, -.5, .5, 1]; mask on the last pixel: 1 - 1/1.5
    close(energy_loss(a, torch.tensor([[[0.0, 0, 0, 1]]], dtype=torch.float64)), 1 - 1 / 1.5)


def test_batch_and_reduction():
    a = torch.stack([t([[1, 2], [3, -4]])[0], t([[0, 0], [0, 1]])[0]])
    m = torch.stack([t([[1, 0], [0, 0]])[0], t([[0, 0], [0, 1]])[0]])
    per_image = energy_loss(a, m)
    torch.testing.assert_close(per_image, torch.tensor([1 - 1 / 6, 0.0], dtype=torch.float64))
    torch.testing.assert_close(localisation_loss("energy", a, m), per_image.sum())
    torch.testing.assert_close(localisation_loss("energy", a, m, reduction="mean"), per_image.mean())
    assert set(LOSSES) == {"energy", "l1", "ppce", "rrr", "distill"}
    with pytest.raises(ValueError, match="unknown localisation loss"):
        localisation_loss("iou", a, m)
    with pytest.raises(ValueError, match="reduction"):
        localisation_loss("energy", a, m, reduction="max")
    with pytest.raises(ValueError, match="one each"):
        energy_loss(a, m[:1])


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_with_upsampling(name):
    torch.manual_seed(0)
    a = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    m = torch.zeros(2, 6, 6, dtype=torch.float64)
    m[0, 1:4, 2:6] = 1
    m[1, 3:6, 0:3] = 1
    assert torch.autograd.gradcheck(lambda x: LOSSES[name](x, m), (a,))


def test_active_area_loss_hand_value_and_gradient():
    stage1 = torch.ones(2, 1, 2, 2)
    stage1[1, :, 0] = 0  # ratios 1 and .5 -> batch ratio .75
    stage2 = torch.zeros(2, 1, 1, 2)
    stage2[0, :, :, 0] = 1  # ratios .5 and 0 -> .25
    assert float(active_area_loss([stage1, stage2], 0.25)) == pytest.approx(0.25)
    assert float(active_area_loss([stage1, stage2], [0.75, 0.5])) == pytest.approx(0.0625)
    assert float(active_area_loss([stage1.bool()], 1.0)) == pytest.approx(0.0625)
    masks = [torch.rand(3, 1, 2, 2, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    assert torch.autograd.gradcheck(lambda p, q: active_area_loss([p, q], [0.3, 0.6]), masks)
    with pytest.raises(ValueError, match="one per stage"):
        active_area_loss([stage1, stage2], [0.5])


def test_area_threshold_schedule():
    # AIM Fig. 9: start at epoch 10, anneal over 100 epochs down to 0.3, then hold
    assert area_threshold(0, 10, 100, 0.3) == 1.0
    assert area_threshold(10, 10, 100, 0.3) == 1.0
    assert area_threshold(60, 10, 100, 0.3) == pytest.approx(0.65)
    assert area_threshold(110, 10, 100, 0.3) == pytest.approx(0.3)
    assert area_threshold(199, 10, 100, 0.3) == pytest.approx(0.3)
    assert area_threshold(5, 5, 0, 0.25) == 0.25
    values = [area_threshold(e, 0, 50, 0.25) for e in range(60)]
    assert all(b <= a for a, b in zip(values, values[1:]))
