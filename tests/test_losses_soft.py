"""Soft masks in [0, 1] with every localisation loss and the explanation-distillation loss: gradcheck
w.r.t. the attributions, central finite differences of the guidance gradient w.r.t. a model's
weights through `Guide`, torch's cosine similarity as the oracle of `distill`, exact identities."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from finite_differences import assert_matches_central_differences
from rightfocus import Guide
from rightfocus.losses import LOSSES, distill_loss, energy_loss, normalised_positive, ppce_loss


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_with_soft_masks(name):
    torch.manual_seed(1)
    a = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)
    m = torch.rand(3, 8, 8, dtype=torch.float64)  # soft, upsampling on the way
    assert torch.autograd.gradcheck(lambda x: LOSSES[name](x, m), (a,))
    same = torch.rand(3, 4, 4, dtype=torch.float64)  # soft, no upsampling
    assert torch.autograd.gradcheck(lambda x: LOSSES[name](x, same), (a,))


def test_distill_is_one_minus_torch_cosine_similarity():
    torch.manual_seed(2)
    a = torch.randn(4, 3, 3, dtype=torch.float64)
    t = torch.rand(4, 6, 6, dtype=torch.float64)
    s = F.interpolate(normalised_positive(a)[:, None], size=(6, 6), mode="bilinear")[:, 0]
    want = 1 - F.cosine_similarity(s.flatten(1), t.flatten(1), dim=1)
    torch.testing.assert_close(distill_loss(a, t), want)
    # a map equal to its target (up to scale) costs 0; disjoint supports cost 1; no direction costs 1
    m = torch.zeros(1, 4, 4, dtype=torch.float64)
    m[0, :2] = 0.5
    assert float(distill_loss(3 * m, m)[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(distill_loss(1 - 2 * m, m)[0]) == pytest.approx(1.0, abs=1e-12)
    zero = torch.zeros(1, 4, 4, dtype=torch.float64, requires_grad=True)
    loss = distill_loss(zero, m)
    loss.sum().backward()
    assert float(loss.detach()[0]) == 1.0 and torch.equal(zero.grad, torch.zeros_like(zero))


def test_soft_mask_identities():
    torch.manual_seed(3)
    a = torch.randn(2, 5, 5, dtype=torch.float64)
    c = 0.3
    # Energy with a constant mask c is 1 - c (every positive attribution counts c)
    torch.testing.assert_close(energy_loss(a, torch.full((2, 5, 5), c, dtype=torch.float64)),
                               torch.full((2,), 1 - c, dtype=torch.float64))
    # PPCE with a soft mask is the m-weighted mean of -log A-hat+, also when the mask's mass is < 1
    m = torch.zeros(2, 5, 5, dtype=torch.float64)
    m[:, 1, 1], m[:, 2, 3] = 0.2, 0.1
    a_hat = normalised_positive(a)
    nll = -torch.log(a_hat).clamp(max=100).nan_to_num(posinf=100)
    want = (m * nll).flatten(1).sum(1) / m.flatten(1).sum(1)
    torch.testing.assert_close(ppce_loss(a, m), want)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize("name", list(LOSSES))
def test_guidance_gradient_with_soft_masks_matches_finite_differences(name):
    torch.manual_seed(4)
    model = _Tiny().double()
    images = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    targets = torch.tensor([0, 2])
    masks = torch.rand(2, 6, 6, dtype=torch.float64)
    guide = Guide(model, layer="input", method="ixg", loss=name)

    def loss() -> torch.Tensor:
        return guide(images, targets, masks)[1].sum()

    weight = model.conv.weight
    grad, = torch.autograd.grad(loss(), weight)
    assert_matches_central_differences(weight, grad.reshape(-1), lambda: float(loss().detach()), range(0, weight.numel(), 7),
                                       label=name)


def test_guide_refuses_masks_outside_unit_range():
    guide = Guide(_Tiny(), layer="input", method="ixg", loss="energy")
    with pytest.raises(ValueError, match=r"masks must lie in \[0, 1\]"):
        guide(torch.rand(1, 3, 6, 6), torch.tensor([0]), torch.full((1, 6, 6), 2.0))
