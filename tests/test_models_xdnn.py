"""X-DNN (the X-Fixup release architecture): no additive bias anywhere, so f(a x) = a f(x) for a > 0
and captum's Integrated Gradients (zero baseline) equals its Input x Gradient."""

from __future__ import annotations

import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients
from torch import nn

from rightfocus.models import build_model

torch.set_num_threads(1)  # the test machine's cores are shared; avoid oversubscription


def _randomised(kind, arch, **options):
    """Random parameters AND buffers: Fixup's zero init would make homogeneity trivially true."""
    torch.manual_seed(0)
    model = build_model(kind, arch, 4, **options).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("arch, size", [("tiny", 16), ("resnet18", 32)])
def test_xdnn_is_positively_homogeneous_of_degree_one(arch, size):
    model = _randomised("xdnn", arch)
    x = torch.rand(3, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        base = model(x)
        assert base.abs().max() > 1e-3
        for a in (0.25, 3.0, 17.0):
            torch.testing.assert_close(model(a * x), a * base, rtol=1e-5, atol=1e-9)


def test_a_model_with_biases_is_not_homogeneous():
    model = _randomised("vanilla", "tiny")
    b = model.head.fc.bias
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        gap = (model(3.0 * x) - b - 3.0 * (model(x) - b)).abs().max()
    assert gap > 1e-3


def test_xdnn_has_no_bias_and_no_batch_norm_before_the_logit():
    model = build_model("xdnn", "resnet50", 10)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    biased = [n for n, m in model.named_modules() if getattr(m, "bias", None) is not None]
    assert biased == []
    # X-Fixup release: no Fixup scalars (biases or `scale`), downsample a bare 1x1 conv, fc without bias
    assert all(p.dim() > 1 for p in model.parameters())
    assert {"layer1.0.downsample.weight", "fc.weight"} <= set(model.source_key_map)


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_integrated_gradients_equals_input_times_gradient_on_xdnn():
    model = _randomised("xdnn", "tiny")
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    ig = IntegratedGradients(model).attribute(x, baselines=0.0, target=1, n_steps=8)
    ixg = InputXGradient(model).attribute(x, target=1)
    torch.testing.assert_close(ig, ixg, rtol=1e-6, atol=1e-10)
    # and the completeness axiom: attributions sum to f(x) - f(0) = f(x)
    with torch.no_grad():
        torch.testing.assert_close(ixg.sum((1, 2, 3)), model(x)[:, 1])


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_integrated_gradients_differs_from_input_times_gradient_with_biases():
    model = _randomised("vanilla", "tiny")
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    ig = IntegratedGradients(model).attribute(x, baselines=0.0, target=1, n_steps=8)
    ixg = InputXGradient(model).attribute(x, target=1)
    assert (ig - ixg).abs().max() > 1e-3 * ixg.abs().max()
