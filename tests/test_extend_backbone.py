"""Adding a backbone is one file: a plug-in module registers torchvision's ShuffleNetV2 x0.5 (not one
of ours) with its stage cut in `BACKBONES`; then the vanilla kind builds it with every tap, AIM cuts it
into numbered stages, a guided model-guidance run trains with it, and mg.fig7 (the voc-backbones
figure, which reads the backbones present in the results) draws it. Nothing under lib/ changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision

from extension_helpers import lib_fingerprint, load_plugin, train_pair

PLUGIN = '''
"""ShuffleNetV2 x0.5 as a rightfocus backbone (random init; weights only from local files)."""
import torchvision
from rightfocus.models import BACKBONES, Backbone

CUTS = []  # every network cut, so the test sees the entry being used


def cut_shufflenet(net):
    CUTS.append(type(net).__name__)
    return {"mid1": {0: [net.conv1, net.maxpool]}, "mid2": {1: net.stage2}, "mid3": {2: net.stage3},
            "final": {3: [net.stage4, net.conv5]}}  # strides 4, 8, 16, 32


BACKBONES.register("shufflenet_v2_x0_5", Backbone(
    "shufflenet_v2_x0_5", "ShuffleNetV2 x0.5", "shufflenet", torchvision.models.shufflenet_v2_x0_5,
    cut_shufflenet, resolution=224))
'''
ARCH = "shufflenet_v2_x0_5"
SIZE = 32


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    import sys

    from rightfocus.models import BACKBONES

    before = lib_fingerprint()
    load_plugin(tmp_path_factory.mktemp("plugin"), "toy_backbone_plugin", PLUGIN)
    yield sys.modules["toy_backbone_plugin"]
    BACKBONES.unregister(ARCH)
    sys.modules.pop("toy_backbone_plugin", None)
    assert lib_fingerprint() == before, "adding a backbone changed a file under lib/"


def test_the_vanilla_kind_and_aim_build_the_new_backbone(plugin):
    from rightfocus.models import TAPS, build_model
    from rightfocus.models.aim import AIM_ARCHS, build_aim
    from rightfocus.models.vanilla import ARCHS

    assert ARCH in ARCHS and ARCH in AIM_ARCHS
    torch.manual_seed(0)
    model = build_model("vanilla", ARCH, 3).eval()
    assert plugin.CUTS == ["ShuffleNetV2"]
    torch.manual_seed(0)  # the same initialisation, in torchvision's own network
    reference_net = torchvision.models.shufflenet_v2_x0_5(num_classes=3).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        logits, acts = model.forward_taps(x, TAPS)
        reference = reference_net(x)
    assert logits.shape == (2, 3)
    assert [tuple(acts[t].shape[1:]) for t in TAPS[1:]] == [(24, 16, 16), (48, 8, 8), (96, 4, 4), (1024, 2, 2)]
    torch.testing.assert_close(logits, reference)  # the tapped forward is torchvision's forward
    aim = build_aim(ARCH, 3, stage=1, width=16, mask_width=4)
    assert aim.tap_stage == {"mid1": 0, "mid2": 1, "mid3": 2, "final": 3}
    assert aim(torch.rand(1, 3, 64, 64)).shape == (1, 3)


def test_a_guided_run_trains_with_it_and_mg_fig7_draws_it(plugin, tmp_path):
    from rightfocus.data.synthetic import make
    from rightfocus.runs import store
    from rightfocus.runs.config import RunConfig
    from rightfocus.figures import RenderContext, render_all
    from rightfocus.figures.mg_pareto import fig7

    voc = make("voc2007", tmp_path / "voc", seed=0, n_train=12, n_val=6, n_test=6, min_size=24, max_size=28)
    base = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch=ARCH, epochs=1, lr=1e-3,
                     batch_size=6, image_size=SIZE, seed=0)
    results = tmp_path / "results"
    run_ids = train_pair(base, results)
    assert store.load_config(store.run_dir(results, "demo", run_ids[1])).arch == ARCH
    store.write_group(results, "demo", "voc-backbones", run_ids)

    fig = fig7(RenderContext("demo", results, "mg.fig7"))
    titles = [ax.get_title() for ax in fig.axes]
    assert any(f"Vanilla {ARCH}" in t for t in titles), titles
    out = tmp_path / "out"
    render_all("demo", results, only=["mg.fig7"], out=out)
    assert json.loads((out / "render_report.json").read_text())["mg.fig7"] == "rendered"


def test_the_documented_example_runs(tmp_path):
    """docs/extending.md "Add a backbone": the block registers the same backbone and builds it."""
    from readme_blocks import run_block, runnable_blocks

    (block,) = runnable_blocks("tests/test_extend_backbone.py")
    out = run_block(block, tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "torch.Size([1, 3]) torch.Size([1, 24, 16, 16]) torch.Size([1, 1024, 2, 2])" in out.stdout
