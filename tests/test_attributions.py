"""Attributions against captum (InputXGradient, LayerGradCam, IntegratedGradients, GuidedBackprop,
GuidedGradCam), exact identities (X-DNN: IntGrad = IxG), a hand-derived guided rule on GELU, and the
all-classes path against the per-pair loop. Tiny nets on 16 px inputs."""

from __future__ import annotations

import pytest
import torch
from captum.attr import (
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    LayerGradientXActivation,
)
from torch import nn

from rightfocus.attributions import (
    attribute,
    attribute_all_classes,
    attribution_context,
    attribution_from_tap,
    guided_rule,
)
from rightfocus.models.taps import PooledLinear, TappedModel

torch.set_num_threads(1)


class TinyNet(TappedModel):
    """Conv net with taps mid1 (16 px), mid2 (8 px), final (4 px)."""

    def __init__(self, act=nn.ReLU, bias: bool = True, kind: str = "vanilla", width: int = 4, classes: int = 3):
        super().__init__()
        self.kind = kind

        def conv(i, o, s):
            return nn.Conv2d(i, o, 3, stride=s, padding=1, bias=bias)

        self.stages = nn.ModuleDict(
            {
                "mid1": nn.Sequential(conv(3, width, 1), act()),
                "mid2": nn.Sequential(conv(width, width, 2), act()),
                "final": nn.Sequential(conv(width, width, 2), act()),
            }
        )
        self.head = PooledLinear(width, classes, bias=bias)


def _net(seed: int = 0, **kw) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(**kw).eval()


def _images(n: int = 3, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(n, 3, 16, 16)


TARGETS = torch.tensor([0, 2, 1])


def test_ixg_input_equals_captum():
    model, x = _net(), _images()
    ours = attribute(model, x, TARGETS, "ixg", "input")
    theirs = InputXGradient(model).attribute(x, target=TARGETS).sum(1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer", ["mid1", "mid2", "final"])
def test_ixg_at_tap_equals_captum(layer):
    model, x = _net(), _images()
    ours = attribute(model, x, TARGETS, "ixg", layer, upsample=False)
    theirs = LayerGradientXActivation(model, model.stages[layer]).attribute(x, target=TARGETS).sum(1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer", ["mid2", "final"])
def test_gradcam_equals_captum_with_interpolation(layer):
    model, x = _net(), _images()
    ours = attribute(model, x, TARGETS, "gradcam", layer)
    cam = LayerGradCam(model, model.stages[layer]).attribute(x, target=TARGETS, relu_attributions=True)
    theirs = LayerAttribution.interpolate(cam, (16, 16), interpolate_mode="bilinear")[:, 0]
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert ours.shape == (3, 16, 16) and (ours >= 0).all()


def test_from_tap_uses_the_given_forward_and_matches_attribute():
    model, x = _net(), _images()
    logits, acts = model.forward_taps(x, ["mid2"])
    maps = attribution_from_tap(logits, acts["mid2"], TARGETS, "ixg")
    torch.testing.assert_close(maps, attribute(model, x, TARGETS, "ixg", "mid2", upsample=False))


def test_xdnn_single_pass_intgrad_equals_captum_and_biases_break_it():
    x = _images()
    xdnn = _net(bias=False, kind="xdnn")
    ours = attribute(xdnn, x, TARGETS, "intgrad", "input")
    theirs = IntegratedGradients(xdnn).attribute(x, target=TARGETS, n_steps=256).sum(1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    # the same single pass on a net WITH biases (mislabelled as X-DNN) is not IntGrad
    biased = _net(bias=True, kind="xdnn")
    ours_b = attribute(biased, x, TARGETS, "intgrad", "input")
    theirs_b = IntegratedGradients(biased).attribute(x, target=TARGETS, n_steps=256).sum(1)
    assert (ours_b - theirs_b).abs().max() > 1e-2 * theirs_b.abs().max()


def test_riemann_intgrad_equals_captum_riemann_right_at_input():
    model, x = _net(act=nn.GELU), _images()
    ours = attribute(model, x, TARGETS, "intgrad", "input", steps=16)
    theirs = IntegratedGradients(model).attribute(x, target=TARGETS, n_steps=16, method="riemann_right").sum(1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_riemann_intgrad_is_complete_with_many_steps():
    """Completeness: sum of IntGrad = f(x) - f(0) (exact in the limit of the Riemann sum)."""
    model, x = _net(act=nn.GELU), _images()
    maps = attribute(model, x, TARGETS, "intgrad", "input", steps=512)
    with torch.no_grad():
        gap = (model(x) - model(torch.zeros_like(x))).gather(1, TARGETS[:, None])[:, 0]
    torch.testing.assert_close(maps.sum((1, 2)), gap, atol=2e-3, rtol=1e-2)


def test_riemann_intgrad_at_tap_equals_captum_on_the_subnetwork():
    model, x = _net(act=nn.GELU), _images()
    ours = attribute(model, x, TARGETS, "intgrad", "mid1", steps=8, upsample=False)
    rest = nn.Sequential(model.stages["mid2"], model.stages["final"], model.head)
    act = model.stages["mid1"](x).detach()
    theirs = IntegratedGradients(rest).attribute(act, target=TARGETS, n_steps=8, method="riemann_right").sum(1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_guided_backprop_equals_captum_on_relu_net_with_inplace_relu():
    model, x = _net(act=lambda: nn.ReLU(inplace=True)), _images()
    ours = attribute(model, x, TARGETS, "guided_backprop")
    theirs = GuidedBackprop(model).attribute(x, target=TARGETS).sum(1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    plain = InputXGradient(model).attribute(x, target=TARGETS) / x
    assert not torch.allclose(ours, plain.sum(1), atol=1e-4)


def test_guided_gradcam_equals_captum_on_relu_net():
    model, x = _net(), _images()
    ours = attribute(model, x, TARGETS, "guided_gradcam", "mid2")
    theirs = GuidedGradCam(model, model.stages["mid2"]).attribute(x, target=TARGETS, interpolate_mode="bilinear")
    torch.testing.assert_close(ours, theirs.sum(1), atol=1e-5, rtol=1e-5)


def test_guided_rule_on_gelu_follows_the_hand_derived_rule_and_differs_from_captum():
    """One hidden GELU layer: guided grad = W1^T relu(gelu'(W1 x) * w2[t]); captum = the plain gradient."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7, bias=False), nn.GELU(), nn.Linear(7, 2, bias=False)).double()
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 1, 1, 0])
    with guided_rule(net):
        (guided,) = torch.autograd.grad(net(x).gather(1, target[:, None]).sum(), x)
    w1, w2 = net[0].weight, net[2].weight
    h = (x @ w1.T).detach()
    gelu_prime = 0.5 * (1 + torch.erf(h / 2**0.5)) + h * torch.exp(-0.5 * h**2) / (2 * torch.pi) ** 0.5
    expected = torch.relu(gelu_prime * w2[target]) @ w1
    torch.testing.assert_close(guided, expected.detach())
    (plain,) = torch.autograd.grad(net(x).gather(1, target[:, None]).sum(), x)
    captum = GuidedBackprop(net).attribute(x, target=target)
    torch.testing.assert_close(captum, plain)  # captum's rule silently does nothing on GELU
    assert (guided - plain).abs().max() > 1e-3


def test_guided_rule_refuses_nets_without_nonlinearity_modules():
    with pytest.raises(ValueError, match="no nn.ReLU"):
        with guided_rule(nn.Linear(2, 2)):
            pass


def test_context_refuses_wrong_combinations():
    with pytest.raises(ValueError, match="B-cos"):
        attribution_context(_net(), "bcos")
    with pytest.raises(ValueError, match="X-DNN"):
        attribution_context(_net(), "intgrad")
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute(_net(), _images(), TARGETS, "saliency")
    with pytest.raises(ValueError, match="unknown layer"):
        attribute(_net(), _images(), TARGETS, "ixg", "mid3")


LABELS = torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 1]])


@pytest.mark.parametrize(
    "method,layer,strategy",
    [
        ("ixg", "input", "per_rank"),
        ("ixg", "mid2", "vmap"),
        ("gradcam", "final", "per_rank"),
        ("gradcam", "mid2", "repeat"),
        ("intgrad", "input", "auto"),
        ("guided_backprop", "input", "auto"),
    ],
)
def test_all_classes_equals_per_pair_loop(method, layer, strategy):
    model, x = _net(act=nn.GELU), _images()
    maps, image_index, class_index = attribute_all_classes(model, x, LABELS, method, layer, steps=4, strategy=strategy)
    assert image_index.tolist() == [0, 0, 2, 2, 2] and class_index.tolist() == [0, 2, 0, 1, 2]
    loop = torch.cat(
        [
            attribute(model, x[i : i + 1], torch.tensor([c]), method, layer, steps=4)
            for i, c in zip(image_index, class_index)
        ]
    )
    torch.testing.assert_close(maps, loop, atol=1e-5, rtol=1e-5)


def test_attribute_works_under_no_grad():
    model, x = _net(), _images()
    with torch.no_grad():
        maps = attribute(model, x, TARGETS, "ixg", "mid2")
        all_maps, _, _ = attribute_all_classes(model, x, LABELS, "gradcam", "final", strategy="per_rank")
    torch.testing.assert_close(maps, attribute(model, x, TARGETS, "ixg", "mid2"))
    assert all_maps.shape == (5, 16, 16)


def test_all_classes_without_positives_is_empty():
    maps, image_index, _ = attribute_all_classes(_net(), _images(), torch.zeros(3, 3), "ixg", "mid2")
    assert maps.shape == (0, 16, 16) and image_index.numel() == 0
