"""Registry, tap shapes and parameter counts of every model kind (tiny sizes; big ones at 64 px)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rightfocus.models import (
    BACKBONES,
    MODEL_KINDS,
    TAPS,
    TappedModel,
    build_model,
    count_parameters,
    explanation_mode,
    register_kind,
)
from rightfocus.models.backbones import buildable

torch.set_num_threads(1)  # the test machine's cores are shared; avoid oversubscription

# (kind, arch, options, input size, tap channels mid1..final, tap strides mid1..final)
CASES = [
    ("vanilla", "tiny", {}, 32, (16, 32, 64, 128), (1, 2, 4, 8)),
    ("vanilla", "resnet18", {}, 64, (64, 128, 256, 512), (4, 8, 16, 32)),
    ("vanilla", "resnet50", {}, 64, (256, 512, 1024, 2048), (4, 8, 16, 32)),
    ("vanilla", "densenet121", {}, 64, (256, 512, 1024, 1024), (4, 8, 16, 32)),
    ("vanilla", "convnext_tiny", {}, 64, (96, 192, 384, 768), (4, 8, 16, 32)),
    ("vanilla", "tiny_convnext", {}, 32, (16, 32, 64, 128), (4, 8, 16, 32)),
    ("vanilla", "resnet101", {}, 64, (256, 512, 1024, 2048), (4, 8, 16, 32)),
    ("xdnn", "tiny", {}, 32, (16, 32, 64, 128), (1, 2, 4, 8)),
    ("xdnn", "resnet18", {}, 64, (64, 128, 256, 512), (4, 8, 16, 32)),
    ("xdnn", "resnet50", {}, 64, (256, 512, 1024, 2048), (4, 8, 16, 32)),
    ("bcos", "tiny", {}, 32, (16, 32, 64, 128), (1, 2, 4, 8)),
    ("bcos", "tiny", {"max_out": 2}, 16, (16, 32, 64, 128), (1, 2, 4, 8)),
    ("bcos", "resnet18", {}, 64, (64, 128, 256, 512), (4, 8, 16, 32)),
    ("bcos", "resnet50", {}, 64, (256, 512, 1024, 2048), (4, 8, 16, 32)),
    # tiny_densenet: 8 stem channels + 4 growth per layer, halved by each transition
    ("bcos", "tiny_densenet", {}, 32, (12, 10, 9, 8), (1, 2, 4, 8)),
    ("bcos", "densenet121", {}, 64, (256, 512, 1024, 1024), (4, 8, 16, 32)),
    ("bcos", "tiny_vit", {}, 32, (16, 16, 16, 16), (4, 4, 4, 4)),
    ("bcos", "vit_s", {}, 64, (384, 384, 384, 384), (16, 16, 16, 16)),
]
SLOW = {("vanilla", "resnet50"), ("vanilla", "resnet101"), ("vanilla", "densenet121"), ("vanilla", "convnext_tiny"), ("xdnn", "resnet50"),
        ("bcos", "resnet50"), ("bcos", "densenet121"), ("bcos", "vit_s")}


def _params(cases):
    return [pytest.param(*c, id=f"{c[0]}-{c[1]}-{c[3]}px{'-' + str(c[2]) if c[2] else ''}",
                         marks=[pytest.mark.slow] if (c[0], c[1]) in SLOW else []) for c in cases]


@pytest.mark.parametrize("kind, arch, options, size, channels, strides", _params(CASES))
def test_logits_and_every_tap_have_the_documented_shapes(kind, arch, options, size, channels, strides):
    torch.manual_seed(0)
    model = build_model(kind, arch, num_classes=5, **options).eval()
    assert isinstance(model, TappedModel) and model.kind == kind
    assert model.taps == TAPS
    in_ch = 6 if kind == "bcos" else 3
    assert model.input_encoding == ("bcos" if kind == "bcos" else "imagenet")
    x = torch.rand(2, in_ch, size, size)
    with torch.no_grad():
        logits, acts = model.forward_taps(x, TAPS)
        plain = model(x)
    assert logits.shape == (2, 5)
    torch.testing.assert_close(plain, logits)  # the tapped pass is the ordinary forward
    assert acts["input"] is x
    for tap, c, s in zip(TAPS[1:], channels, strides):
        assert acts[tap].shape == (2, c, size // s, size // s), tap


def test_every_registered_kind_is_covered_here():
    covered = {c[0] for c in CASES}
    assert covered == {"vanilla", "xdnn", "bcos"} <= set(MODEL_KINDS)


def test_every_buildable_backbone_is_covered_here():
    assert {c[1] for c in CASES if c[0] == "vanilla"} == set(buildable())


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_each_kind_builds_models_that_carry_its_metadata(kind):
    entry = MODEL_KINDS[kind]
    options = {"stage": 1} if kind == "aim" else {}
    model = build_model(kind, "tiny", 3, **options)
    assert model.kind == kind and model.input_encoding == entry.input_encoding
    assert isinstance(entry(arch="tiny", num_classes=3, **options), TappedModel)  # an entry builds as a builder


@pytest.mark.parametrize("arch", [pytest.param(a, marks=[pytest.mark.slow] if not a.startswith("tiny") else [])
                                  for a in buildable()])
def test_vanilla_and_aim_cut_a_backbone_the_same_way(arch):
    """One stage cut (models/backbones/) serves both: from the same initialisation, the vanilla model's
    taps and logits equal AIM's numbered stages run in order followed by the backbone's own classifier."""
    from rightfocus.models.aim_backbones import build_backbone

    torch.manual_seed(0)
    vanilla = build_model("vanilla", arch, 5).eval()
    torch.manual_seed(0)
    aim = build_backbone(arch, 5)
    aim.stages.eval(), aim.head.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        logits, acts = vanilla.forward_taps(x, TAPS)
        h = x
        for tap, stage in aim.stages.items():
            h = stage(h)
            torch.testing.assert_close(h, acts[tap], rtol=0, atol=0)
            assert aim.out_channels[aim.indices[tap][-1]] == h.shape[1]
        torch.testing.assert_close(aim.head(h), logits, rtol=0, atol=0)
    assert list(aim.indices) == list(TAPS[1:]) and aim.family == BACKBONES[arch].family


def test_unknown_kind_arch_and_tap_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model kind 'nope'"):
        build_model("nope", "tiny", 3)
    for kind in ("vanilla", "xdnn", "bcos"):
        with pytest.raises(ValueError, match="unknown .*arch 'resnet7'"):
            build_model(kind, "resnet7", 3)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("vanilla", "tiny", 0)
    model = build_model("vanilla", "tiny", 3)
    with pytest.raises(ValueError, match="unknown tap"):
        model.forward_taps(torch.rand(1, 3, 16, 16), ["mid4"])


def test_register_kind_adds_one_family_and_refuses_a_clash():
    def build(arch, num_classes, **options):
        return build_model("vanilla", "tiny", num_classes, **options)

    register_kind("_test_kind", build)
    try:
        assert build_model("_test_kind", "any", 4)(torch.rand(1, 3, 16, 16)).shape == (1, 4)
        with pytest.raises(ValueError, match="already registered"):
            register_kind("_test_kind", lambda *a, **k: None)
    finally:
        MODEL_KINDS.unregister("_test_kind")


def test_count_parameters_matches_aim_table6():
    # AIM Table 6: ResNet50 with a 200-class head has 23.9 M parameters, ConvNeXt-tiny 28.0 M
    assert round(count_parameters(build_model("vanilla", "resnet50", 200)) / 1e6, 1) == 23.9
    assert round(count_parameters(build_model("vanilla", "convnext_tiny", 200)) / 1e6, 1) == 28.0


def test_count_parameters_counts_elements_and_trainable_only():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False))  # 12 + 4 + 8
    assert count_parameters(model) == 24
    model[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 12


def test_explanation_mode_is_a_no_op_for_models_without_dynamic_scales():
    torch.manual_seed(0)
    model = build_model("vanilla", "tiny", 3).eval()
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    g_plain = torch.autograd.grad(model(x)[:, 0].sum(), x)[0]
    with explanation_mode(model):
        g_expl = torch.autograd.grad(model(x)[:, 0].sum(), x)[0]
    torch.testing.assert_close(g_plain, g_expl)
