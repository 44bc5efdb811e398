"""Weight loading from local files: torchvision layout, our own layout, head replacement, errors."""

from __future__ import annotations

import pytest
import torch
import torchvision

from rightfocus.models import build_model, load_weights
from rightfocus.models.weights import WEIGHTS_ENV

torch.set_num_threads(1)  # the test machine's cores are shared; avoid oversubscription


def _perturb_bn_stats(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.normal_(0, 0.1)


def test_torchvision_resnet18_state_dict_gives_identical_logits(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    _perturb_bn_stats(tv)
    path = tmp_path / "resnet18-fresh.pth"
    torch.save(tv.state_dict(), path)
    ours = build_model("vanilla", "resnet18", 1000, weights=path).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv.eval()(x), rtol=0, atol=0)


def test_other_class_count_replaces_only_the_head(tmp_path, monkeypatch):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    _perturb_bn_stats(tv)
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}}, tmp_path / "r18.pth")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))  # relative names resolve under $WEIGHTS_ROOT
    ours = build_model("vanilla", "resnet18", 20).eval()
    report = load_weights(ours, "r18.pth")
    assert report.head_kept_fresh == ["head.fc.bias", "head.fc.weight"]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        feats = ours.forward_taps(x, ["final"])[1]["final"]
        expected = torch.nn.Sequential(*list(tv.eval().children())[:-2])(x)
    torch.testing.assert_close(feats, expected, rtol=0, atol=0)


def test_missing_file_names_the_file_and_weights_root(monkeypatch, tmp_path):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"resnet50-11ad3fa6\.pth.*WEIGHTS_ROOT"):
        build_model("vanilla", "resnet50", 20, weights="resnet50-11ad3fa6.pth")


def test_a_file_for_another_architecture_is_refused_with_the_keys(tmp_path):
    torch.save(build_model("vanilla", "tiny", 3).state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(ValueError, match="does not fit .*missing keys"):
        build_model("vanilla", "tiny", 3, weights=tmp_path / "tiny.pth", layers=(2, 1, 1, 1))
    with pytest.raises(ValueError, match=r"shape mismatches 60: \['stages.mid1.0.weight: file \(16, 3, 3, 3\) vs model \(8, 3, 3, 3\)'"):
        build_model("vanilla", "tiny", 3, weights=tmp_path / "tiny.pth", width=8)


@pytest.mark.parametrize(
    "kind, arch, channels", [("bcos", "tiny", 6), ("bcos", "tiny_densenet", 6), ("bcos", "tiny_vit", 6), ("xdnn", "tiny", 3)]
)
def test_upstream_and_own_layouts_round_trip(tmp_path, kind, arch, channels):
    torch.manual_seed(0)
    source = build_model(kind, arch, 3)
    with torch.no_grad():
        for p in source.parameters():
            p.normal_(0, 0.3)
    upstream = {k: source.state_dict()[ours] for k, ours in source.source_key_map.items()}
    assert len(upstream) == len(source.state_dict()) and set(upstream) != set(source.state_dict())
    torch.save(upstream, tmp_path / "upstream.pth")
    torch.save(source.state_dict(), tmp_path / "own.pth")
    x = torch.rand(2, channels, 16, 16)
    for name in ("upstream.pth", "own.pth"):
        loaded = build_model(kind, arch, 3, weights=tmp_path / name).eval()
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), source.eval()(x), rtol=0, atol=0)


def test_upstream_keys_follow_the_release_layouts():
    keys = set(build_model("bcos", "resnet18", 10).source_key_map)
    assert {"conv1.linear.weight", "bn1.weight", "layer1.0.conv2.linear.weight", "layer2.0.downsample.0.linear.weight",
            "fc.linear.weight", "bn1.running_mean"} <= keys
    assert not any("logit" in k for k in keys)  # the logit bias is a float attribute, as in B-cos v2
    assert {"features.denseblock1.denselayer1.conv1.linear.weight", "features.norm5.running_var",
            "classifier.linear.weight"} <= set(build_model("bcos", "tiny_densenet", 10).source_key_map)
    assert set(torchvision.models.densenet121(weights=None).state_dict()) == set(
        build_model("vanilla", "densenet121", 1000).source_key_map)
    assert set(torchvision.models.convnext_tiny(weights=None).state_dict()) == set(
        build_model("vanilla", "convnext_tiny", 1000).source_key_map)
