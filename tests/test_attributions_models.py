"""Attributions on the real model registry (tiny architectures): completeness identities that no one
here chose (B-cos: contributions sum to the logit minus the fixed bias; X-DNN: single-pass IntGrad sums
to f(x) - f(0) and equals captum's IntegratedGradients), captum on the vanilla model, all-classes vs
the per-pair loop, and the guidance gradient (double backprop) vs finite differences on FIRST-layer
weights, the completeness check of B-cos explanations."""

from __future__ import annotations

import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients

from rightfocus.attributions import attribute, attribute_all_classes, attribution_context, attribution_from_tap
from rightfocus.losses import localisation_loss
from rightfocus.models import MODEL_KINDS, build_model
from finite_differences import assert_matches_central_differences

torch.set_num_threads(1)

PAIRS = [("vanilla", "ixg"), ("vanilla", "gradcam"), ("xdnn", "intgrad"), ("bcos", "bcos"), ("bcos", "gradcam")]
TAPS = ["input", "mid1", "mid2", "mid3", "final"]


def _model(kind: str, dtype=torch.float32, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(kind, "tiny", num_classes=4)
    for p in model.parameters():  # Fixup (X-DNN) starts with zero classifier and last convs: no signal
        if p.dim() > 1 and not p.any():
            torch.nn.init.normal_(p, std=0.2)
    return model.to(dtype).eval()


def _images(model, n: int = 2, size: int = 16, dtype=torch.float32, seed: int = 1):
    torch.manual_seed(seed)
    x = torch.rand(n, 3, size, size, dtype=dtype)
    return torch.cat([x, 1 - x], 1) if model.input_encoding == "bcos" else (x - 0.45) / 0.225


@pytest.mark.parametrize("kind,method", PAIRS)
def test_every_tap_gives_finite_maps_at_both_resolutions(kind, method):
    model = _model(kind)
    x = _images(model)
    targets = torch.tensor([1, 3])
    for tap in TAPS:
        if method == "gradcam" and tap == "input":
            continue
        maps = attribute(model, x, targets, method, tap)
        assert maps.shape == (2, 16, 16) and torch.isfinite(maps).all() and maps.abs().sum() > 0
        small = attribute(model, x, targets, method, tap, upsample=False)
        with torch.no_grad():
            tap_shape = model.forward_taps(x, [tap])[1][tap].shape[-2:]
        assert small.shape[-2:] == tap_shape


def test_bcos_contributions_sum_to_the_logit_minus_the_bias():
    model = _model("bcos", torch.float64)
    x = _images(model, dtype=torch.float64)
    targets = torch.tensor([0, 2])
    maps = attribute(model, x, targets, "bcos", "input")
    with torch.no_grad():
        logits = model(x).gather(1, targets[:, None])[:, 0]
    bias = model.logit_bias
    torch.testing.assert_close(maps.sum((1, 2)) + bias, logits, atol=1e-6, rtol=1e-6)
    # plain IxG on the same model (scales differentiated) is a different map; with B = 2 the model is
    # nearly homogeneous, so its SUM is nearly the same and only the pixels tell them apart
    plain = attribute(model, x, targets, "ixg", "input")
    assert (plain - maps).abs().max() > 0.1 * maps.abs().max()


def test_xdnn_single_pass_intgrad_is_complete_and_equals_captum():
    model = _model("xdnn", torch.float64)
    x = _images(model, dtype=torch.float64)
    targets = torch.tensor([1, 2])
    ours = attribute(model, x, targets, "intgrad", "input")
    with torch.no_grad():
        gap = (model(x) - model(torch.zeros_like(x))).gather(1, targets[:, None])[:, 0]
    torch.testing.assert_close(ours.sum((1, 2)), gap, atol=1e-8, rtol=1e-8)
    theirs = IntegratedGradients(model).attribute(x, target=targets, n_steps=64).sum(1)
    torch.testing.assert_close(ours, theirs, atol=1e-8, rtol=1e-6)


def test_vanilla_ixg_equals_captum():
    model = _model("vanilla")
    x = _images(model)
    targets = torch.tensor([3, 0])
    ours = attribute(model, x, targets, "ixg", "input")
    theirs = InputXGradient(model).attribute(x.clone(), target=targets).sum(1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind,method", PAIRS)
@pytest.mark.parametrize("strategy", ["per_rank", "vmap", "repeat"])
def test_all_classes_equals_pair_loop(kind, method, strategy):
    model = _model(kind)
    x = _images(model, n=3)
    labels = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1]])
    maps, ii, cc = attribute_all_classes(model, x, labels, method, "mid2", strategy=strategy)
    loop = torch.cat([attribute(model, x[i : i + 1], c[None], method, "mid2") for i, c in zip(ii, cc)])
    torch.testing.assert_close(maps, loop, atol=1e-5, rtol=1e-4)


def _guidance_loss(model, x, targets, masks, method, tap, loss, create_graph):
    x = x.clone().requires_grad_(tap == "input")
    with attribution_context(model, method):
        logits, acts = model.forward_taps(x, [tap])
        maps = attribution_from_tap(logits, acts[tap], targets, method, create_graph=create_graph)
    return localisation_loss(loss, maps, masks)  # its backward runs OUTSIDE the context


@pytest.mark.parametrize(
    "kind,method,tap,loss",
    [("bcos", "bcos", "input", "energy"), ("bcos", "bcos", "mid2", "l1"), ("xdnn", "intgrad", "input", "rrr"),
     ("vanilla", "ixg", "mid2", "ppce")],
)
def test_guidance_gradient_matches_finite_differences(kind, method, tap, loss):
    _check_guidance_gradient(kind, method, tap, loss)


@pytest.mark.slow
@pytest.mark.parametrize("tap", TAPS)
@pytest.mark.parametrize("loss", ["energy", "l1", "ppce", "rrr"])
@pytest.mark.parametrize("kind,method", [("bcos", "bcos"), ("xdnn", "intgrad"), ("vanilla", "ixg")])
def test_guidance_gradient_matches_finite_differences_everywhere(kind, method, tap, loss):
    _check_guidance_gradient(kind, method, tap, loss)


def _check_guidance_gradient(kind, method, tap, loss):
    model = _model(kind, torch.float64)
    x = _images(model, dtype=torch.float64, seed=2)
    targets = torch.tensor([1, 3])
    masks = torch.zeros(2, 16, 16, dtype=torch.float64)
    masks[0, 2:10, 4:14] = 1
    masks[1, 6:16, 0:9] = 1
    weight = next(p for p in model.parameters() if p.dim() == 4)  # the first convolution
    _guidance_loss(model, x, targets, masks, method, tap, loss, True).backward()
    analytic = weight.grad.flatten().clone()
    assert analytic.abs().max() > 0
    assert_matches_central_differences(
        weight, analytic, lambda: _guidance_loss(model, x, targets, masks, method, tap, loss, False).item(),
        analytic.abs().topk(3).indices.tolist(), label=(kind, method, tap, loss))


#: evaluation methods per model kind (the AIM paper's GradCAM / Guided GradCAM; kinds added to the
#: registry later get GradCAM at the final tap)
EVAL_METHODS = {
    "vanilla": [("gradcam", "final"), ("guided_backprop", "input"), ("guided_gradcam", "final")],
    "xdnn": [("gradcam", "final"), ("guided_backprop", "input")],
    "bcos": [("gradcam", "final")],
    "aim": [("gradcam", "final"), ("gradcam", "aim"), ("guided_backprop", "input"), ("guided_gradcam", "aim")],
}


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_registry_kinds_evaluation_methods_match_the_pair_loop(kind):
    model = _model(kind)
    x = _images(model, n=2, size=32)
    labels = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0]])
    for method, layer in EVAL_METHODS.get(kind, [("gradcam", "final")]):
        maps, ii, cc = attribute_all_classes(model, x, labels, method, layer)
        assert maps.shape == (3, 32, 32) and torch.isfinite(maps).all()
        loop = torch.cat([attribute(model, x[i : i + 1], c[None], method, layer) for i, c in zip(ii, cc)])
        torch.testing.assert_close(maps, loop, atol=1e-5, rtol=1e-4)


def test_guided_backprop_on_convnext_is_not_the_plain_gradient():
    """ConvNeXt uses GELU: the guided rule must act there (captum's acts on nn.ReLU only)."""
    torch.manual_seed(0)
    model = build_model("vanilla", "convnext_tiny", num_classes=4).eval()
    for name, p in model.named_parameters():  # fresh layer scales (1e-6) would hide the GELU branches
        if name.endswith("layer_scale"):
            torch.nn.init.ones_(p)
    x = _images(model, n=1, size=32)
    targets = torch.tensor([2])
    guided = attribute(model, x, targets, "guided_backprop")
    xg = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(model(xg)[0, 2], xg)
    assert plain.abs().max() > 0
    assert (guided - plain.sum(1)).abs().max() > 1e-2 * plain.sum(1).abs().max()
