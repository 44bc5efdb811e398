"""AIM model (Alshami et al. 2025, Sec. 3, App. A.2, D.2-D.5): shapes and masks of every variant,
the binary Gumbel-softmax, Table 6 parameter counts, edge-emphasised init, GradCAM taps."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from captum.attr import LayerGradCam
from torch import nn
from torch.nn import functional as F

from rightfocus.models.aim import (AimModel, BottomUpAimModel, build_aim, complexity, measure_table6,
                                   merge_masks)
from rightfocus.models.aim_parts import (BinaryGumbel, apply_edge_init, edge_emphasis_filter,
                                         gumbel_schedule)

K, N = 5, 2
#: input size per backbone family: the ResNet-shaped tiny net keeps full resolution in its stem
SIZES = {"resnet": 32, "convnext": 64}

# (arch, options, expected mask stages top first, expected aux stages)
VARIANTS = [
    ("tiny_convnext", dict(stage=0), (3, 2, 1, 0), (3, 2, 1, 0)),
    ("tiny_convnext", dict(stage=1), (3, 2, 1), (3, 2, 1)),
    ("tiny_convnext", dict(stage=2), (3, 2), (3, 2)),
    ("tiny_convnext", dict(stage=3), (3,), (3,)),
    ("tiny_convnext", dict(stage=1, aux_losses=False), (3, 2, 1), ()),
    ("tiny_convnext", dict(stage=1, single_mask=True), (3, 2, 1), (3, 2, 1)),
    ("tiny_convnext", dict(stage=2, edge_init=True), (3, 2), (3, 2)),
    ("tiny", dict(stage=1), (4, 3, 2, 1), (4, 3, 2, 1)),
    ("tiny", dict(stage=2), (4, 3, 2), (4, 3, 2)),
    ("tiny", dict(stage=3, single_mask=True, aux_losses=False), (4, 3), ()),
    ("tiny_convnext", dict(direction="bottom_up", masked_blocks=(1, 2, 3)), (3, 2, 1), ()),
    ("tiny_convnext", dict(direction="bottom_up", masked_blocks=(2, 3)), (3, 2), ()),
    ("tiny_convnext", dict(direction="bottom_up", masked_blocks=(3,)), (3,), ()),
    ("tiny", dict(direction="bottom_up", masked_blocks=(1, 4)), (4, 1), ()),
]
IDS = [f"{a}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for a, o, _, _ in VARIANTS]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convs are fastest single-threaded; on a shared, oversubscribed CPU, OpenMP threads
    spin-wait for each other (seconds per tiny forward). Restored after this module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(model, seed: int = 0) -> torch.Tensor:
    size = SIZES[model.family]
    return torch.randn(N, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _stage_sizes(model) -> dict[int, tuple[int, int]]:
    """Spatial size of each tap's output, by the stage number it outputs (from the backbone taps)."""
    with torch.no_grad():
        _, acts = model.forward_taps(_images(model), ["mid1", "mid2", "mid3", "final"])
    return {model.tap_stage[t]: tuple(a.shape[-2:]) for t, a in acts.items()}


@pytest.mark.parametrize("arch,options,mask_stages,aux_stages", VARIANTS, ids=IDS)
def test_variant_shapes_and_binary_masks(arch, options, mask_stages, aux_stages):
    torch.manual_seed(0)
    model = build_aim(arch, K, **options)
    sizes = _stage_sizes(model)
    for train in (True, False):
        model.train(train)
        _check_output(model.forward_aim(_images(model)), sizes, mask_stages, aux_stages)


def _check_output(out, sizes, mask_stages, aux_stages):
    assert out.logits.shape == (N, K)
    assert tuple(out.masks) == mask_stages
    assert tuple(out.stage_logits) == aux_stages
    for idx, m in out.masks.items():
        assert m.shape == (N, 1, *sizes[idx])
        assert set(m.detach().unique().tolist()) <= {0.0, 1.0}
    for logits in out.stage_logits.values():
        assert logits.shape == (N, K)
    # merged mask: per-pixel count of active masks at the largest mask's resolution
    largest = max((sizes[i] for i in mask_stages), key=lambda s: s[0] * s[1])
    assert out.merged_mask.shape == (N, 1, *largest)
    assert out.merged_mask.min() >= 0 and out.merged_mask.max() <= len(mask_stages)
    assert torch.equal(out.merged_mask, out.merged_mask.round())


def test_single_mask_reuses_the_top_mask_nearest_upsampled():
    torch.manual_seed(0)
    model = build_aim("tiny_convnext", K, stage=1, single_mask=True).eval()
    out = model.forward_aim(_images(model))
    top = out.masks[3]
    assert list(model.mask_estimators) == ["final"]
    assert list(out.estimated_masks) == [3]  # what the active-area loss sees: no upsampled copies
    for idx, factor in ((2, 2), (1, 4)):  # strides 2 between ConvNeXt stages
        expected = top.repeat_interleave(factor, -1).repeat_interleave(factor, -2)
        assert torch.equal(out.masks[idx], expected)


def test_top_down_pathway_follows_eqs_3_to_5():
    """Recompute Eqs. 3-5 by hand from the model's modules (eval: B = (A >= 0))."""
    torch.manual_seed(0)
    model = build_aim("tiny", K, stage=2).eval()
    x = _images(model, 1)
    with torch.no_grad():
        out = model.forward_aim(x, taps=["mid2", "mid3", "final", "aim"])
        feats = {t: out.taps[t] for t in ("final", "mid3", "mid2")}
        merged = None
        for tap in ("final", "mid3", "mid2"):  # stage 4, 3, 2
            f = feats[tap]
            b = (model.mask_estimators[tap](f) >= 0).float()
            o = model.branches[tap](f) * b
            assert torch.allclose(model.stage_heads[tap](o), out.stage_logits[model.tap_stage[tap]], atol=1e-5)
            merged = o if merged is None else o + merged.repeat_interleave(2, -1).repeat_interleave(2, -2)
        assert torch.allclose(merged, out.taps["aim"], atol=1e-5)
        assert torch.allclose(model.head(merged), out.logits, atol=1e-5)
        assert torch.equal(out.merged_mask, merge_masks(list(out.masks.values())))


def test_bottom_up_masks_multiply_stage_outputs_without_skip():
    torch.manual_seed(0)
    model = build_aim("tiny_convnext", K, direction="bottom_up", masked_blocks=(2,)).eval()
    x = _images(model, 2)
    with torch.no_grad():
        mid2 = model.forward_taps(x, ["mid2"])[1]["mid2"]
        est = model.mask_estimators["2"]
        est.out.bias -= est(mid2).median()  # about half the positions active: a real mask
        out = model.forward_aim(x, taps=["mid2", "mid3", "final", "aim"])
        dense = model.stages["mid3"].blocks(mid2)  # the unmasked stage
        b = (est(mid2) >= 0).float()
        assert 0 < b.sum() < b.numel()
        assert torch.equal(out.masks[2], b)
        assert torch.allclose(out.taps["mid3"], dense * b, atol=1e-6)  # no skip: zero where masked
        assert torch.allclose(model.stages["final"](out.taps["mid3"]), out.taps["final"], atol=1e-6)
        assert torch.equal(out.taps["aim"], out.taps["final"])
        assert torch.allclose(model.head(out.taps["final"]), out.logits, atol=1e-6)


def test_training_gradient_reaches_mask_estimators():
    torch.manual_seed(0)
    model = build_aim("tiny_convnext", K, stage=1).train()
    out = model.forward_aim(_images(model))
    loss = F.cross_entropy(out.logits, torch.arange(N) % K) + sum(m.mean() for m in out.masks.values())
    loss.backward()
    for tap, est in model.mask_estimators.items():
        grads = [p.grad for p in est.parameters()]
        assert all(g is not None for g in grads), tap
        assert sum(g.abs().sum() for g in grads) > 0, tap


def test_eval_is_deterministic():
    torch.manual_seed(0)
    model = build_aim("tiny_convnext", K, stage=1).eval()
    x = _images(model)
    with torch.no_grad():
        a, b = model.forward_aim(x), model.forward_aim(x)
    assert torch.equal(a.logits, b.logits)
    for idx in a.masks:
        assert torch.equal(a.masks[idx], b.masks[idx])
        assert torch.equal(a.masks[idx], (a.mask_logits[idx] >= 0).float())


# --- binary Gumbel-softmax -------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.5, 1.0, 5.0])
def test_gumbel_straight_through_gradient(temperature):
    # values kept 0.05 away from 0: within ~1e-16 of it sigmoid rounds to exactly 0.5 (DynConv's
    # training rule soft >= 0.5 then says 1 while x >= 0 says 0)
    x = ((torch.arange(41, dtype=torch.float64) - 20) * 0.2 + 0.05).reshape(1, 1, 41)
    weights = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = BinaryGumbel(temperature, noise=False).train()
    x1 = x.clone().requires_grad_(True)
    y = g(x1)
    assert torch.equal(y.detach(), (x >= 0).double())  # forward: hard values
    (grad,) = torch.autograd.grad((y * weights).sum(), x1)
    x2 = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((torch.sigmoid(x2 / temperature) * weights).sum(), x2)
    assert torch.allclose(grad, expected, rtol=1e-12, atol=1e-15)
    s = torch.sigmoid(x / temperature)  # closed form d sigmoid(x/t)/dx = s (1 - s) / t
    assert torch.allclose(grad, weights * s * (1 - s) / temperature, rtol=1e-12)


def test_gumbel_eval_is_deterministic_threshold_at_zero():
    x = torch.randn(4, 1, 9, 9, generator=torch.Generator().manual_seed(3))
    x[0, 0, 0, 0] = 0.0  # x >= 0 at exactly zero counts as active
    g = BinaryGumbel(temperature=2.5, noise=True).eval()
    a, b = g(x), g(x)
    assert torch.equal(a, b)
    assert torch.equal(a, (x >= 0).float())


def test_gumbel_training_noise_is_logistic():
    """With logistic noise, P(x + L >= 0) = sigmoid(x) whatever the temperature."""
    torch.manual_seed(0)
    x = torch.full((200_000,), 1.0)
    g = BinaryGumbel(temperature=3.0, noise=True).train()
    rate = g(x).mean().item()
    assert abs(rate - 1 / (1 + math.exp(-1.0))) < 0.006
    g.noise = False
    assert g(x).mean().item() == 1.0


def test_gumbel_schedule_and_set_epoch():
    assert gumbel_schedule(0, 100, "dynconv") == (5.0, True)
    assert gumbel_schedule(29, 100, "dynconv") == (5.0, True)
    assert gumbel_schedule(30, 100, "dynconv") == (2.5, True)
    assert gumbel_schedule(60, 100, "dynconv") == (1.0, True)
    assert gumbel_schedule(79, 100, "dynconv") == (1.0, True)
    assert gumbel_schedule(80, 100, "dynconv") == (1.0, False)
    assert gumbel_schedule(0, 200, "fixed") == (1.0, True)
    assert gumbel_schedule(160, 200, "fixed") == (1.0, False)
    with pytest.raises(ValueError, match="unknown Gumbel schedule"):
        gumbel_schedule(0, 10, "cosine")
    model = build_aim("tiny_convnext", K, stage=2, gumbel_schedule="dynconv", noise_off_fraction=0.5)
    assert model.set_epoch(5, 10) == (2.5, False)
    assert (model.gumbel.temperature, model.gumbel.noise) == (2.5, False)
    model.set_gumbel(1.5, True)
    assert (model.gumbel.temperature, model.gumbel.noise) == (1.5, True)


# --- Table 6: parameters and MACs -------------------------------------------------------------------

def _paper_table6() -> dict[str, dict]:
    from rightfocus.experiments.paper_numbers_aim import TABLE6
    return {row["model"]: row for row in TABLE6}


def test_table6_parameter_counts():
    paper = _paper_table6()
    ours = {row["model"]: row for row in measure_table6(count_macs=False)}
    assert set(ours) == set(paper)
    # plain torchvision backbones with a 200-class head: exactly the paper's one-decimal numbers
    assert round(ours["ResNet50"]["params_m"], 1) == paper["ResNet50"]["params_m"] == 23.9
    assert round(ours["ConvNeXt-tiny"]["params_m"], 1) == paper["ConvNeXt-tiny"]["params_m"] == 28.0
    for name, row in ours.items():
        assert abs(row["params_m"] - paper[name]["params_m"]) / paper[name]["params_m"] < 0.03, name
    # the increments over the backbone (the quantity Table 6 reports in brackets) within 0.1 M
    for name, base in (("ConvNeXt-tiny+AIM [1]", "ConvNeXt-tiny"), ("ConvNeXt-tiny+AIM [2]", "ConvNeXt-tiny"),
                       ("ResNet50+AIM [2]", "ResNet50"), ("ResNet50+AIM [3]", "ResNet50")):
        ours_inc = ours[name]["params_m"] - ours[base]["params_m"]
        paper_inc = paper[name]["params_m"] - paper[base]["params_m"]
        assert abs(ours_inc - paper_inc) < 0.1, (name, ours_inc, paper_inc)


def test_complexity_counts_macs_of_a_hand_model():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    got = complexity(model, size=8)
    macs = 3 * 4 * 9 * 8 * 8 + 4 * 8 * 8 * 10
    params = (3 * 4 * 9 + 4) + (256 * 10 + 10)
    assert got["gmacs"] == pytest.approx(macs / 1e9)
    assert got["params_m"] == pytest.approx(params / 1e6)
    assert model.training  # mode restored


@pytest.mark.slow
def test_table6_gmacs_close_to_paper():
    paper = _paper_table6()
    for row in measure_table6():
        assert abs(row["gmacs"] - paper[row["model"]]["gflops"]) <= 0.1, row


# --- edge-emphasised initialisation (App. D.5, Fig. 30) ---------------------------------------------

def test_edge_emphasis_filter_properties():
    f = edge_emphasis_filter(7)
    assert f.shape == (7, 7)
    assert torch.equal(f, f.T) and torch.equal(f, f.flip(0)) and torch.equal(f, f.flip(1))
    assert f[3, 3] == f.min() and (f > f[3, 3]).sum() == 48  # the centre alone is the minimum
    assert f[0, 0] == f.max() == 1.0 and f.min() > 0
    c = torch.arange(7) - 3.0
    dist = torch.sqrt(c[:, None] ** 2 + c[None, :] ** 2).flatten()
    ordered = f.flatten()[dist.argsort()]
    assert torch.all(ordered[1:] >= ordered[:-1] - 1e-7)  # non-decreasing with distance
    with pytest.raises(ValueError, match="odd"):
        edge_emphasis_filter(4)


def test_edge_init_scales_mask_estimator_kernels():
    torch.manual_seed(0)
    plain = build_aim("tiny_convnext", K, stage=2)
    torch.manual_seed(0)
    edged = build_aim("tiny_convnext", K, stage=2, edge_init=True)
    profile = edge_emphasis_filter(3)
    profile = profile / profile.pow(2).mean().sqrt()
    n = 0
    for (name, a), (_, b) in zip(plain.mask_estimators.named_modules(), edged.mask_estimators.named_modules()):
        if isinstance(a, nn.Conv2d):
            if a.kernel_size == (3, 3):
                assert torch.allclose(b.weight, a.weight * profile, atol=1e-7), name
                n += 1
            else:
                assert torch.equal(b.weight, a.weight), name
    assert n == 2 * 7  # 2 estimators x (stem conv + 3 blocks x 2 convs)
    for (_, p), (_, q) in zip(plain.branches.named_parameters(), edged.branches.named_parameters()):
        assert torch.equal(p, q)  # only the mask estimators change
    assert apply_edge_init(nn.Linear(2, 2)) == 0


# --- taps and GradCAM -------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [dict(stage=1), dict(direction="bottom_up", masked_blocks=(2, 3))])
def test_gradcam_at_aim_tap_matches_captum(options):
    from rightfocus.attributions import attribute
    torch.manual_seed(0)
    model = build_aim("tiny_convnext", K, **options).eval()
    assert model.taps == ("input", "mid1", "mid2", "mid3", "final", "aim")
    assert model.classifier_tap == "aim"
    x, targets = _images(model, 4), torch.tensor([1, 3])
    logits, acts = model.forward_taps(x, ["aim", "final"])
    assert torch.allclose(logits, model(x)) and torch.allclose(model.head(acts["aim"]), logits)
    ours = attribute(model, x, targets, "gradcam", layer="aim", upsample=False)
    theirs = LayerGradCam(model, model.aim_tap).attribute(x, target=targets, relu_attributions=True)
    assert ours.shape == theirs[:, 0].shape
    assert torch.allclose(ours, theirs[:, 0], atol=1e-5)
    ours_final = attribute(model, x, targets, "gradcam", layer="final", upsample=False)
    theirs_final = LayerGradCam(model, model.stages["final"]).attribute(x, target=targets, relu_attributions=True)
    assert torch.allclose(ours_final, theirs_final[:, 0], atol=1e-5)


def test_unknown_tap_is_rejected():
    model = build_aim("tiny_convnext", K)
    with pytest.raises(ValueError, match="unknown tap"):
        model.forward_taps(_images(model), ["layer9"])


# --- building: registry, options, errors, weights ---------------------------------------------------

def test_registered_as_kind_aim():
    from rightfocus.models.registry import MODEL_KINDS, build_model
    assert "aim" in MODEL_KINDS
    model = build_model("aim", "tiny_convnext", K, stage=3)
    assert isinstance(model, AimModel) and model.kind == "aim"
    assert isinstance(build_model("aim", "tiny_convnext", K, direction="bottom_up", masked_blocks=(3,)), BottomUpAimModel)


@pytest.mark.parametrize("options,match", [
    (dict(stage=0, arch="tiny"), "stage T=0"),
    (dict(stage=7), "stage T=7"),
    (dict(direction="sideways"), "direction"),
    (dict(direction="bottom_up"), "needs masked_blocks"),
    (dict(direction="bottom_up", masked_blocks=(0, 1)), "subset"),
    (dict(direction="bottom_up", masked_blocks=(3,), stage=2), "top-down"),
    (dict(masked_blocks=(3,)), "bottom_up"),
    (dict(gumbel_schedule="cosine"), "gumbel_schedule"),
    (dict(arch="vgg16"), "unknown AIM backbone"),
    (dict(arch="tiny", drop_path=0.3), "stochastic depth"),
])
def test_bad_options_raise_clear_errors(options, match):
    arch = options.pop("arch", "tiny_convnext")
    with pytest.raises(ValueError, match=match):
        build_aim(arch, K, **options)


def test_backbone_weights_from_local_file(tmp_path):
    from rightfocus.models.aim_backbones import build_torchvision
    torch.manual_seed(1)
    source = build_torchvision("tiny", 1000)  # ImageNet-style 1000-class file
    path = tmp_path / "tiny.pth"
    torch.save(source.state_dict(), path)
    model = build_aim("tiny", K, backbone_weights=path, stage=2)
    assert torch.equal(model.stages["mid1"][0][0].weight, source.conv1.weight)  # stem conv
    assert torch.equal(model.stages["final"][0][0].conv2.weight, source.layer4[0].conv2.weight)
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        build_aim("tiny", K, backbone_weights=tmp_path / "missing.pth")
    torch.save({"bogus.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="do not fit"):
        build_aim("tiny", K, backbone_weights=tmp_path / "bad.pth")


def test_build_model_weights_loads_a_full_aim_checkpoint(tmp_path):
    from rightfocus.models.registry import build_model
    torch.manual_seed(2)
    saved = build_model("aim", "tiny", K, stage=2)
    torch.save(saved.state_dict(), tmp_path / "aim.pth")
    torch.manual_seed(3)
    loaded = build_model("aim", "tiny", K, weights=tmp_path / "aim.pth", stage=2).eval()
    x = _images(loaded)
    with torch.no_grad():
        assert torch.equal(loaded(x), saved.eval()(x))


def test_full_size_backbones_build_with_torchvision_stages():
    with torch.device("meta"):  # shapes only: fast
        model = build_aim("resnet101", 200, stage=3)
        reference = torchvision.models.resnet101(weights=None, num_classes=200)
        convnext = build_aim("convnext_tiny", 200, stage=1, drop_path=0.3, dropout=0.3)
    assert convnext.stages["final"][0][1][-1].stochastic_depth.p == pytest.approx(0.3)  # Table 4
    assert convnext.head.dropout.p == 0.3 and convnext.top_down_taps == ("final", "mid3", "mid2")
    assert model.tap_stage == {"mid1": 1, "mid2": 2, "mid3": 3, "final": 4}
    assert model.top_down_taps == ("final", "mid3")
    backbone_params = sum(p.numel() for p in model.stages.parameters())
    assert backbone_params == sum(p.numel() for n, p in reference.named_parameters() if not n.startswith("fc."))
