"""Release files under their own names: X-DNN's ``.pth.tar``, model guidance's ``0.``-prefixed B-cos
ResNet-50, torchvision's files (incl. DenseNet's legacy keys), the stand-in writer and the checker.

Oracles: an independent float64 functional X-Fixup ResNet-50 written here from the facts, the exact
identity IntGrad = Input x Gradient (captum) of a bias-free network, torchvision's own models loaded by
torchvision's own loaders (its download function pointed at the stand-in file of the same name), and
the ``bcos`` package's pretrained entrypoints loaded the same way.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import InputXGradient, IntegratedGradients

from rightfocus.attributions import attribute
from rightfocus.models import build_model
from rightfocus.models.release import RELEASES, check_weights_file, write_standin
from rightfocus.models.weights import read_state_dict

torch.set_num_threads(1)

XDNN = "xfixup_resnet50_model_best.pth.tar"


def _serve_from(monkeypatch, module, directory: Path) -> None:
    """Point a project's download function at local files of the same name (nothing is downloaded)."""
    monkeypatch.setattr(module, "load_state_dict_from_url",
                        lambda url, *a, **k: torch.load(directory / Path(url).name, weights_only=True))


# ---------------------------------------------------------------- X-DNN


def _xfixup_resnet50(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """X-Fixup ResNet-50 as released, straight from the state dict: torchvision's ResNet-50 layout,
    no batch norm, no bias, no scale; downsample a bare 1x1 conv; stem 7x7/2, ReLU, max pool."""
    h = F.max_pool2d(F.relu(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3)), 3, 2, 1)
    for layer, blocks in enumerate((3, 4, 6, 3), start=1):
        for i in range(blocks):
            p, stride = f"layer{layer}.{i}.", (2 if layer > 1 and i == 0 else 1)
            out = F.relu(F.conv2d(h, sd[p + "conv1.weight"]))
            out = F.relu(F.conv2d(out, sd[p + "conv2.weight"], stride=stride, padding=1))
            out = F.conv2d(out, sd[p + "conv3.weight"])
            shortcut = F.conv2d(h, sd[p + "downsample.weight"], stride=stride) if p + "downsample.weight" in sd else h
            h = F.relu(out + shortcut)
    return h.mean((2, 3)) @ sd["fc.weight"].T


def test_xdnn_release_layout_loads_and_computes_the_x_fixup_resnet50(tmp_path):
    path = write_standin(XDNN, tmp_path)
    raw = torch.load(path, weights_only=True)
    assert {"epoch", "arch", "state_dict"} <= set(raw) and all(k.startswith("module.") for k in raw["state_dict"])
    sd = {k.removeprefix("module."): v.double() for k, v in raw["state_dict"].items()}
    # the facts: no norm, no bias, no scale anywhere; bare downsample convs; fc without bias
    assert all(v.dim() == 4 for k, v in sd.items() if k != "fc.weight") and sd["fc.weight"].shape == (1000, 2048)
    assert "layer1.0.downsample.weight" in sd and not any("bn" in k or "bias" in k or "scale" in k for k in sd)
    model = build_model("xdnn", "resnet50", 1000, weights=path).double().eval()
    assert model.weights_report.head_kept_fresh == []
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, expected = model(x), _xfixup_resnet50(sd, x)
    assert expected.abs().max() > 0
    diff = float((ours - expected).abs().max())
    print(XDNN, {"logits_vs_functional": diff, "scale": float(expected.abs().max())})
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12 * float(expected.abs().max()))

    # bias-free: IntGrad (zero baseline) is Input x Gradient exactly, and so is our single-pass IntGrad
    targets = torch.tensor([3, 998])
    ixg = InputXGradient(model).attribute(x.clone().requires_grad_(), target=targets).detach()
    ig = IntegratedGradients(model).attribute(x, baselines=0.0, target=targets, n_steps=2)
    assert ixg.abs().max() > 0
    print(XDNN, {"intgrad_vs_ixg": float((ig - ixg).abs().max()), "scale": float(ixg.abs().max())})
    torch.testing.assert_close(ig, ixg, rtol=1e-10, atol=1e-12 * float(ixg.abs().max()))
    torch.testing.assert_close(attribute(model, x, targets, "intgrad", "input"), ixg.sum(1), rtol=1e-10,
                               atol=1e-12 * float(ixg.abs().max()))


@pytest.mark.slow
def test_xdnn_release_replaces_only_the_head_for_another_class_count(tmp_path):
    path = write_standin(XDNN, tmp_path)
    full = build_model("xdnn", "resnet50", 1000, weights=path).eval()
    five = build_model("xdnn", "resnet50", 5, weights=path).eval()
    assert five.weights_report.head_kept_fresh == ["head.fc.weight"]
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(five.forward_taps(x, ["final"])[1]["final"],
                                   full.forward_taps(x, ["final"])[1]["final"], rtol=0, atol=0)


# ---------------------------------------------------------------- model guidance's B-cos ResNet-50


@pytest.mark.slow
def test_model_guidance_bcos_resnet50_file_is_the_bcos_v2_resnet50_behind_a_0_prefix(tmp_path, monkeypatch):
    from bcos.models import pretrained as bcos_pretrained

    mg = write_standin("resnet_50-f46c1a4159.pth", tmp_path)
    state = torch.load(mg, weights_only=True)
    assert all(k.startswith("0.") for k in state)
    # the same tensors as a B-cos-v2 release file: served to the package's own loader
    torch.save({k[2:]: v for k, v in state.items()}, tmp_path / "resnet_50-ead259efe4.pth")
    _serve_from(monkeypatch, torch.hub, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = bcos_pretrained.resnet50(pretrained=True).double().eval()
    ours = build_model("bcos", "resnet50", 1000, weights=mg, logit_bias=-math.log(999)).double().eval()
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.cat([x, 1 - x], 1)
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    scale = float((b + math.log(999)).abs().max())
    print("resnet_50-f46c1a4159.pth", {"logits": float((a - b).abs().max()), "scale": scale})
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10 * scale)


# ---------------------------------------------------------------- B-cos-v2 stand-ins via the package's loader


@pytest.mark.parametrize("file_name, entry", [
    ("resnet_18-68b4160fff.pth", "resnet18"),
    pytest.param("resnet_50_long-ef38a88533.pth", "resnet50_long", marks=pytest.mark.slow),
    pytest.param("densenet_121-b8daf96afb.pth", "densenet121", marks=pytest.mark.slow),
    pytest.param("bcos_vitc_s_patch1_14-cf55c88f0c.pth", "vitc_s_patch1_14", marks=pytest.mark.slow),
])
def test_bcos_standins_load_with_the_package_loader_under_their_release_url(tmp_path, monkeypatch, file_name, entry):
    from bcos.models import pretrained as bcos_pretrained

    write_standin(file_name, tmp_path)
    assert Path(RELEASES[file_name].url).name == file_name
    _serve_from(monkeypatch, torch.hub, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(bcos_pretrained, entry)(pretrained=True).double().eval()  # strict load, URL's name
    ours = build_model("bcos", RELEASES[file_name].arch, 1000, weights=tmp_path / file_name,
                       logit_bias=-math.log(999)).double().eval()
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.cat([x, 1 - x], 1)
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    print(file_name, {"logits": float((a - b).abs().max()), "scale": float((b + math.log(999)).abs().max())})
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10 * max(float((b + math.log(999)).abs().max()), 1e-6))


# ---------------------------------------------------------------- torchvision


@pytest.mark.parametrize("file_name, weights_enum", [
    pytest.param("densenet121-a639ec97.pth", "DenseNet121_Weights", marks=pytest.mark.slow),
    pytest.param("resnet50-0676ba61.pth", "ResNet50_Weights", marks=pytest.mark.slow),
    pytest.param("resnet101-63fe2227.pth", "ResNet101_Weights", marks=pytest.mark.slow),
    pytest.param("convnext_tiny-983f1562.pth", "ConvNeXt_Tiny_Weights", marks=pytest.mark.slow),
])
def test_torchvision_standins_load_with_torchvisions_loader_and_give_equal_logits(tmp_path, monkeypatch, file_name,
                                                                                   weights_enum):
    release = RELEASES[file_name]
    write_standin(file_name, tmp_path)
    weights = getattr(torchvision.models, weights_enum).IMAGENET1K_V1
    assert Path(weights.url).name == file_name and release.url == weights.url
    _serve_from(monkeypatch, torchvision.models._api, tmp_path)
    theirs = getattr(torchvision.models, release.arch)(weights=weights).eval()  # torchvision's own loading
    ours = build_model("vanilla", release.arch, 1000, weights=tmp_path / file_name).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    print(file_name, {"logits": float((a - b).abs().max()), "scale": float(b.abs().max())})
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def _legacy_densenet_keys(state: dict) -> dict:
    """torchvision's 2017 DenseNet file: ``norm.1`` style keys, no ``num_batches_tracked``."""
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        for name in ("norm1", "norm2", "conv1", "conv2"):
            key = key.replace(f".{name}.", f".{name[:-1]}.{name[-1]}.") if "denselayer" in key else key
        out[key] = value
    return out


def test_densenet121_saved_from_torchvision_in_legacy_keys_gives_identical_logits(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.densenet121(weights=None)
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    legacy = _legacy_densenet_keys(tv.state_dict())
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    torch.save(legacy, tmp_path / "densenet121-a639ec97.pth")
    ours = build_model("vanilla", "densenet121", 1000, weights=tmp_path / "densenet121-a639ec97.pth").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv.eval()(x), rtol=0, atol=0)


# ---------------------------------------------------------------- reading, refusing, checking


def test_every_release_has_a_kind_arch_and_a_url_ending_in_its_name():
    from rightfocus.models import bcos, vanilla, xdnn

    archs = {"bcos": bcos.ARCHS, "vanilla": vanilla.ARCHS, "xdnn": xdnn.ARCHS}
    for name, release in RELEASES.items():
        assert release.num_classes == 1000 and release.project
        assert release.arch in archs[release.kind], name
        if "nextcloud" not in release.url:  # model guidance's link is a share link: saved under the name
            assert Path(release.url).name == name


def test_a_file_that_needs_pickle_is_refused_with_a_readable_message(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "args": Path("x")}, tmp_path / "pickled.pth")
    with pytest.raises(ValueError, match="needs pickle"):
        read_state_dict(tmp_path / "pickled.pth")
    problems = check_weights_file(tmp_path / "pickled.pth", "xdnn", "tiny")
    assert len(problems) == 1 and "needs pickle" in problems[0]


def test_check_weights_file_is_empty_for_a_fitting_file_and_lists_what_does_not_fit(tmp_path):
    path = write_standin("resnet_18-68b4160fff.pth", tmp_path)
    assert check_weights_file(path, "bcos", "resnet18") == []
    wrong = check_weights_file(path, "bcos", "tiny")
    assert "kind='bcos' arch='resnet18'" in wrong[0] and any(p.startswith("shape mismatches") for p in wrong)
    assert any(p.startswith("unexpected keys") and "layer1.1.conv1.linear.weight" in p for p in wrong)
    assert check_weights_file(path, "bcos", "resnet18", num_classes=5) == [
        "the head does not have 5 classes: ['head.fc.linear.weight'] differ in shape"]
    missing = check_weights_file(tmp_path / "nope.pth", "bcos", "resnet18")
    assert len(missing) == 1 and missing[0].startswith("FileNotFoundError") and "nope.pth" in missing[0]


def test_an_unknown_layout_fails_with_one_message_listing_what_did_not_fit(tmp_path):
    torch.save({"encoder.weight": torch.zeros(3, 3), "conv1.linear.weight": torch.zeros(64, 6, 7, 7)},
               tmp_path / "other.pth")
    with pytest.raises(ValueError) as err:
        build_model("bcos", "resnet18", 1000, weights=tmp_path / "other.pth")
    message = str(err.value)
    assert "unexpected keys 1: ['encoder.weight']; missing keys 79: ['bn1.weight'," in message
    assert "and 71 more" in message and "kind/arch" in message


@pytest.mark.slow
def test_standins_are_deterministic_in_the_seed_and_perturb_norm_statistics(tmp_path):
    a = torch.load(write_standin("resnet_18-68b4160fff.pth", tmp_path / "a"), weights_only=True)
    b = torch.load(write_standin("resnet_18-68b4160fff.pth", tmp_path / "b"), weights_only=True)
    c = torch.load(write_standin("resnet_18-68b4160fff.pth", tmp_path / "c", seed=1), weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["fc.linear.weight"], c["fc.linear.weight"])
    assert not torch.equal(a["bn1.running_var"], torch.ones(64)) and a["bn1.running_mean"].abs().max() > 0
