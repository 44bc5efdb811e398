"""B-cos layers and models: layer oracles, the contribution identity in explanation mode, and the
exactness of the guidance gradient (finite differences and torch.autograd.gradcheck, float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from rightfocus.models import TAPS, build_model, explanation_mode
from rightfocus.models.bcos_layers import (
    PATCH_NORM_EPS,
    BcosConv2d,
    BcosLinear,
    UncenteredBatchNorm2d,
)
from rightfocus.models.bcos_vit import _Attention, sincos_positions
from finite_differences import assert_matches_central_differences

torch.set_num_threads(1)  # the test machine's cores are shared; avoid oversubscription

TINY = [
    ("tiny", {"width": 8}),
    ("tiny", {"width": 8, "max_out": 2}),
    ("tiny_densenet", {}),
    ("tiny_vit", {}),
]


def _calibrate(model, x):
    """Running variances from one batch, so eval-mode activations have realistic scale."""
    norms = [m for m in model.modules() if isinstance(m, UncenteredBatchNorm2d)]
    for m in norms:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
    for m in norms:
        m.momentum = 0.1
    return model.eval()


# ---------------------------------------------------------------- layer oracles


@pytest.mark.parametrize("b, max_out", [(2.0, 1), (2.0, 2), (1.5, 1)])
def test_bcos_conv_matches_the_cosine_formula_on_unfolded_patches(b, max_out):
    torch.manual_seed(0)
    layer = BcosConv2d(3, 4, kernel_size=3, stride=2, padding=1, b=b, max_out=max_out).double()
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    patches = F.unfold(x, 3, padding=1, stride=2)  # [N, C*9, L]
    w = layer.linear.weight.flatten(1)
    w_hat = w / w.norm(dim=1, keepdim=True)
    lin = torch.einsum("ok,nkl->nol", w_hat, patches)
    if max_out > 1:
        lin = lin.view(2, 4, max_out, -1).max(2).values
    cos = lin / (patches.pow(2).sum(1, keepdim=True) + PATCH_NORM_EPS).sqrt()
    scale = cos.abs() if b == 2 else (cos.abs() + 1e-6) ** (b - 1)  # B-cos v2 adds 1e-6 when B != 2
    expected = (lin * scale).view(2, 4, 4, 4)
    torch.testing.assert_close(layer(x), expected)


def test_bcos_linear_matches_the_cosine_formula_and_is_scale_invariant_in_w():
    torch.manual_seed(0)
    layer = BcosLinear(5, 3).double()
    x = torch.randn(4, 2, 5, dtype=torch.float64)
    w = layer.linear.weight
    norm = x.norm(dim=-1, keepdim=True) + 1e-12  # B-cos v2's linear layer: ||x|| + 1e-12
    cos = (x @ w.T) / w.norm(dim=1) / norm
    expected = cos * cos.abs() * norm
    torch.testing.assert_close(layer(x), expected)
    before = layer(x)
    with torch.no_grad():
        layer.linear.weight.mul_(7.0)  # weights are normalised per output unit
    torch.testing.assert_close(layer(x), before)


def test_uncentered_batch_norm_equals_torch_batch_norm_plus_the_mean_term():
    torch.manual_seed(0)
    ours = UncenteredBatchNorm2d(3).double()
    assert isinstance(ours, torch.nn.BatchNorm2d) and ours.bias is None
    assert list(ours.state_dict()) == ["weight", "running_mean", "running_var", "num_batches_tracked"]
    with torch.no_grad():
        ours.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
    ref = torch.nn.BatchNorm2d(3, affine=False).double()
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64) * 3 + 1
    mean = x.mean((0, 2, 3))
    var = x.var((0, 2, 3), unbiased=False)
    expected = (ref(x) + (mean / (var + ref.eps).sqrt()).view(1, -1, 1, 1)) * ours.weight.view(1, -1, 1, 1)
    torch.testing.assert_close(ours(x), expected)
    # B-cos v2 moves running_var towards the BIASED batch variance (torch's batch norm: unbiased)
    torch.testing.assert_close(ours.running_var, 0.9 + 0.1 * var)
    assert not torch.allclose(ours.running_var, ref.running_var)
    assert not ours.running_mean.any() and int(ours.num_batches_tracked) == 1
    ours.eval()
    expected = x / (0.9 + 0.1 * var + ours.eps).sqrt().view(1, -1, 1, 1) * ours.weight.view(1, -1, 1, 1)
    torch.testing.assert_close(ours(x), expected)


def test_explicit_attention_equals_torch_sdpa():
    torch.manual_seed(0)
    attn = _Attention(8, 2, b=2.0, max_out=1).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    q, k, v = attn.to_qkv(attn.norm(x)).view(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    ref = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 5, 8)
    torch.testing.assert_close(attn(x), attn.to_out(ref))


# ---------------------------------------------------------------- contributions


@pytest.mark.parametrize("train", [True, False], ids=["batch-stats", "running-stats"])
@pytest.mark.parametrize("arch, options", TINY, ids=[a + ("-maxout" if "max_out" in o else "") for a, o in TINY])
def test_contributions_sum_to_logit_minus_bias_at_every_tap_in_explanation_mode(arch, options, train):
    torch.manual_seed(0)
    x = torch.rand(3, 6, 16, 16, dtype=torch.float64)
    model = _calibrate(build_model("bcos", arch, 4, **options).double(), x).train(train)
    x = x.requires_grad_()
    with explanation_mode(model):
        logits, acts = model.forward_taps(x, TAPS)
        target = logits[:, 2]
        grads = torch.autograd.grad(target.sum(), [acts[t] for t in TAPS])
    assert target.sub(model.logit_bias).abs().min() > 1e-3  # non-trivial logits
    for tap, g in zip(TAPS, grads):
        contributions = (g * acts[tap]).sum((1, 2, 3))
        if arch == "tiny_vit" and tap == "input":  # the ViT's added positions are not input contributions
            continue
        torch.testing.assert_close(contributions, target - model.logit_bias, rtol=1e-4, atol=1e-10, msg=tap)


@pytest.mark.parametrize("arch, options", TINY, ids=[a + ("-maxout" if "max_out" in o else "") for a, o in TINY])
def test_plain_gradients_do_not_give_the_contributions(arch, options):
    torch.manual_seed(0)
    x = torch.rand(3, 6, 16, 16, dtype=torch.float64)
    model = _calibrate(build_model("bcos", arch, 4, **options).double(), x)
    x = x.requires_grad_()
    maps = {}
    for explaining in (True, False):
        with explanation_mode(model) if explaining else torch.enable_grad():
            target = model(x)[:, 2]
            maps[explaining] = (torch.autograd.grad(target.sum(), x)[0] * x).sum(1)
    # eval mode: B = 2 layers are (up to the 1e-6 eps) homogeneous, so by Euler the SUMS nearly agree;
    # the maps themselves differ
    assert (maps[True] - maps[False]).abs().max() > 0.05 * maps[True].abs().max()
    # train mode: batch statistics make the model scale-invariant, so even the sums differ
    model.train()
    target = model(x)[:, 2]
    g = torch.autograd.grad(target.sum(), x)[0]
    gap = ((g * x).sum((1, 2, 3)) - (target - model.logit_bias)).abs()
    assert gap.max() > 1e-2 * (target - model.logit_bias).abs().max()


def test_vit_input_contributions_miss_exactly_the_added_positions_share():
    # B-cos v2's ViT ADDS sin-cos positions after the stem: the input contributions sum to the logit
    # minus the bias minus <mid1 gradient, positions>; the identity is exact, and the gap is not small
    torch.manual_seed(0)
    x = torch.rand(2, 6, 16, 16, dtype=torch.float64, requires_grad=True)
    model = build_model("bcos", "tiny_vit", 3).double().train()
    with explanation_mode(model):
        logits, acts = model.forward_taps(x, ["input", "mid1"])
        g_in, g_mid1 = torch.autograd.grad(logits[:, 0].sum(), [x, acts["mid1"]])
    h, w = acts["mid1"].shape[2:]
    pos = sincos_positions(h, w, acts["mid1"].shape[1], torch.float64, x.device).T.reshape(1, -1, h, w)
    share = (g_mid1 * pos).sum((1, 2, 3))
    target = logits[:, 0] - model.logit_bias
    torch.testing.assert_close((g_in * x).sum((1, 2, 3)), target - share, rtol=1e-8, atol=1e-12)
    assert share.abs().min() > 1e-3 * target.abs().max()


def test_explanation_mode_restores_the_flags_also_when_nested_or_raising():
    model = build_model("bcos", "tiny_vit", 3)
    owners = [m for m in model.modules() if hasattr(m, "explaining")]
    with explanation_mode(model):
        with explanation_mode(model):
            pass
        assert all(m.explaining for m in owners)
    assert not any(m.explaining for m in owners)
    with pytest.raises(RuntimeError), explanation_mode(model):
        raise RuntimeError
    assert not any(m.explaining for m in owners)


# ---------------------------------------------------------------- guidance gradient


def _guidance_loss(model, name, x, mask, target=1, clamp=True):
    """params[name] -> B-cos explanation at the input (scales frozen for ITS derivative) -> loss."""
    params = dict(model.named_parameters())

    def loss(value):
        xx = x.clone().requires_grad_()
        with explanation_mode(model):
            logits = functional_call(model, {**params, name: value}, (xx,))
            g = torch.autograd.grad(logits[:, target].sum(), xx, create_graph=True)[0]
        contrib = (g * xx).sum(1)
        if clamp:  # energy-like: share of the positive contributions inside the mask
            pos = contrib.relu()
            return (pos * mask).sum() / pos.sum()
        return (contrib * mask).sum()

    return loss, params[name].detach().clone()


def _setup(arch="tiny", size=16, **options):
    torch.manual_seed(0)
    model = build_model("bcos", arch, 3, **options).double().train()
    x = torch.rand(2, 6, size, size, dtype=torch.float64)
    mask = torch.zeros(2, size, size, dtype=torch.float64)
    mask[:, size // 4 : 3 * size // 4, : size // 2] = 1
    return model, x, mask


@pytest.mark.parametrize("clamp", [True, False], ids=["clamped", "linear"])
def test_guidance_gradient_wrt_first_layer_matches_central_differences(clamp):
    # tiny B-cos ResNet of width 4: 10 B-cos convs + norms deep, batch statistics (train mode)
    model, x, mask = _setup(width=4)
    name = "stages.mid1.0.linear.weight"
    loss, w0 = _guidance_loss(model, name, x, mask, clamp=clamp)
    w = w0.clone().requires_grad_()
    loss(w).backward()  # OUTSIDE explanation mode: scales stay in the graph for the parameters
    h = 1e-6
    for idx in [(0, 0, 0, 0), (1, 3, 1, 2), (3, 5, 2, 1)]:
        plus, minus = w0.clone(), w0.clone()
        plus[idx] += h
        minus[idx] -= h
        fd = (loss(plus) - loss(minus)).item() / (2 * h)
        assert w.grad[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-9), idx


def test_backward_inside_explanation_mode_gives_a_wrong_guidance_gradient():
    # the shortcut "scales always constant" (a tempting, wrong one) must be detectably wrong, so the test above can fail
    model, x, mask = _setup(width=4)
    name = "stages.mid1.0.linear.weight"
    loss, w0 = _guidance_loss(model, name, x, mask)
    right, wrong = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    loss(right).backward()
    with explanation_mode(model):
        loss(wrong).backward()
    assert (right.grad - wrong.grad).abs().max() > 0.1 * right.grad.abs().max()


def test_gradcheck_full_on_a_norm_weight_of_a_tiny_bcos_resnet():
    model, x, mask = _setup(width=4)
    loss, w0 = _guidance_loss(model, "stages.mid1.1.weight", x, mask)
    assert torch.autograd.gradcheck(loss, (w0.requires_grad_(),), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize(
    "arch, name",
    [
        pytest.param("tiny", "stages.mid1.0.linear.weight", marks=pytest.mark.slow),
        ("tiny_vit", "stages.mid2.blocks.0.attn.to_qkv.weight"),  # double backward through attention
        ("tiny_densenet", "stages.mid1.0.linear.weight"),
    ],
)
def test_gradcheck_fast_on_first_layer_weights(arch, name):
    model, x, mask = _setup(arch, **({"width": 4} if arch == "tiny" else {}))
    loss, w0 = _guidance_loss(model, name, x, mask)
    assert torch.autograd.gradcheck(loss, (w0.requires_grad_(),), eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True)


def test_logit_bias_default_is_log_odds_of_one_in_a_thousand():
    model = build_model("bcos", "tiny", 3)
    assert model.logit_bias == pytest.approx(math.log(0.001 / 0.999))
    assert build_model("bcos", "tiny", 3, logit_bias=0.0).logit_bias == 0.0
    # a plain float, as B-cos v2's LogitLayer: not a parameter, not in the state dict
    assert not any("logit" in k for k in model.state_dict())


@pytest.mark.slow
@pytest.mark.parametrize("tap", TAPS)
@pytest.mark.parametrize("loss", ["energy", "l1", "ppce", "rrr"])
@pytest.mark.parametrize("arch", ["tiny_densenet", "tiny_vit"])
def test_guidance_gradient_of_densenet_and_vit_matches_central_differences_at_every_tap(arch, loss, tap):
    # the training step's path (attributions + localisation loss), FIRST-layer weights, train mode
    from rightfocus.attributions import attribution_context, attribution_from_tap
    from rightfocus.losses import localisation_loss

    model, x, mask = _setup(arch)
    targets = torch.tensor([1, 2])
    weight = next(p for p in model.parameters() if p.dim() == 4)  # the first convolution

    def guidance_loss(create_graph: bool) -> torch.Tensor:
        xx = x.clone().requires_grad_(tap == "input")
        with attribution_context(model, "bcos"):
            logits, acts = model.forward_taps(xx, [tap])
            maps = attribution_from_tap(logits, acts[tap], targets, "bcos", create_graph=create_graph)
        return localisation_loss(loss, maps, mask)

    guidance_loss(True).backward()
    analytic = weight.grad.flatten().clone()
    assert analytic.abs().max() > 0
    assert_matches_central_differences(weight, analytic, lambda: guidance_loss(False).item(),
                                       analytic.abs().topk(3).indices.tolist(), label=(arch, loss, tap))
