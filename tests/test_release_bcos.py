"""B-cos release files against B-cos-v2's own code (the ``bcos`` package, a test oracle only).

For each B-cos architecture: the package's model with random init and perturbed norm statistics is
saved as a release file (its own state dict; the ViT and model guidance's ResNet-50 inside a
sequential wrapper, so keys carry ``0.``), loaded with `build_model`, and compared in float64 with the
package's model: logits, input explanations (gradients in explanation mode and the B-cos maps of
`attribute`), and one training-mode step (batch statistics, the running variances it leaves, and the
logits after it). The `tiny` demo variants are compared with the package's ``small_inputs`` models
of the same widths, so the demo runs the same design. Large models are `slow`; ResNet-18 and the
tiny variants stay in the fast suite.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from bcos.models import pretrained as bcos_pretrained
from bcos.models.densenet import BcosDenseNet as PackageDenseNet
from bcos.models.resnet import BasicBlock, BcosResNet as PackageResNet
from bcos.models.vit import SimpleViT
from bcos.modules import BcosConv2d, BcosLinear, BcosSequential, LogitLayer, norms
from torch import nn

from rightfocus.attributions import attribute
from rightfocus.models import build_model, explanation_mode
from rightfocus.models.release import RELEASES, write_standin

torch.set_num_threads(1)

#: the package's ImageNet models are built with logit bias -log(999) (B-cos v2's configs)
LOGIT_BIAS_1000 = -math.log(1000 - 1)
BNU = norms.NoBias(norms.BatchNormUncentered2d)


def _package_tiny(arch: str, num_classes: int) -> nn.Module:
    """The package's small_inputs models at our tiny widths (the definitions of tiny / tiny_densenet /
    tiny_vit in rightfocus.models)."""
    bias = -math.log(num_classes - 1)
    if arch == "tiny":
        return PackageResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, inplanes=16, small_inputs=True,
                             norm_layer=BNU, conv_layer=BcosConv2d, logit_bias=bias)
    if arch == "tiny_densenet":
        return PackageDenseNet(growth_rate=4, block_config=(1, 1, 1, 1), num_init_features=8, bn_size=2,
                               num_classes=num_classes, small_inputs=True, norm_layer=BNU, conv_layer=BcosConv2d,
                               logit_bias=bias)
    with warnings.catch_warnings():  # the package warns when its ViT is built outside its entrypoints
        warnings.simplefilter("ignore")
        vit = SimpleViT(image_size=8, patch_size=1, num_classes=num_classes, dim=16, depth=3, heads=2, mlp_dim=32,
                        channels=6, linear_layer=BcosLinear, conv2d_layer=BcosConv2d, act_layer=nn.Identity,
                        norm_layer=norms.NoBias(norms.DetachableLayerNorm),
                        norm2d_layer=norms.NoBias(norms.DetachableGNLayerNorm2d), conv_stem=[8, 16])
    return BcosSequential(vit, LogitLayer(logit_bias=bias))


def _package_release(file_name: str) -> nn.Module:
    """The package's model of a release file (model guidance's file: B-cos-v2's ResNet-50 in a wrapper)."""
    entry = {"resnet_18-68b4160fff.pth": "resnet18", "resnet_50-ead259efe4.pth": "resnet50",
             "densenet_121-b8daf96afb.pth": "densenet121", "bcos_vitc_s_patch1_14-cf55c88f0c.pth": "vitc_s_patch1_14",
             "resnet_50-f46c1a4159.pth": "resnet50"}[file_name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(bcos_pretrained, entry)(pretrained=False)
    return BcosSequential(model) if file_name == "resnet_50-f46c1a4159.pth" else model


def _perturb(model: nn.Module, size: int, seed: int = 0) -> nn.Module:
    """Random norm weights and statistics (init leaves them at 1 / 0, which hides mistakes): running
    variances from one batch (so eval activations keep their scale through the depth), then each
    scaled by a random factor in [0.5, 2]; running means random (B-cos v2 never uses them)."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.momentum = 1.0
        model.train()(_inputs(size, seed=seed + 5).float())
        for m in bns:
            m.momentum = 0.1
        for name, t in model.state_dict(keep_vars=True).items():
            if name.endswith("running_var"):
                t.mul_(torch.rand(t.shape, generator=g) * 1.5 + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g))
            elif t.dim() == 1 and t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
    return model.eval()


def _inputs(size: int, n: int = 3, seed: int = 1) -> torch.Tensor:
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.cat([x, 1 - x], 1)


def _scale(t: torch.Tensor) -> float:
    return float(t.detach().abs().max())


def _compare(ours: nn.Module, theirs: nn.Module, size: int, bias: float) -> dict[str, float]:
    """Max |difference| of logits and input explanations (eval mode), then of one training step:
    batch-statistics logits, running variances, and eval logits after it. Asserts float64 round-off."""
    ours, theirs = ours.double().eval(), theirs.double().eval()
    x = _inputs(size)
    targets = torch.tensor([0, 7, 3])
    diffs = {}
    with torch.no_grad():
        lo, lt = ours(x), theirs(x)
    assert _scale(lt - bias) > 1e-3  # logits carry signal beyond the bias
    diffs["logits"] = _scale(lo - lt)
    torch.testing.assert_close(lo, lt, rtol=0, atol=1e-10 * _scale(lt - bias))

    # explanations: gradients w.r.t. the input with the dynamic scales constant (explanation mode)
    xo, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    with explanation_mode(ours):
        go = torch.autograd.grad(ours(xo).gather(1, targets[:, None]).sum(), xo)[0]
    with theirs.explanation_mode():
        gt = torch.autograd.grad(theirs(xt).gather(1, targets[:, None]).sum(), xt)[0]
    assert _scale(gt) > 0
    diffs["explanation_gradient"] = _scale(go - gt)
    torch.testing.assert_close(go, gt, rtol=0, atol=1e-10 * _scale(gt))
    maps = attribute(ours, x, targets, "bcos", "input")
    diffs["bcos_map"] = _scale(maps - (gt * x).sum(1))
    torch.testing.assert_close(maps, (gt * x).sum(1), rtol=0, atol=1e-10 * _scale((gt * x).sum(1)))

    # one training step of the running statistics (batch variance; B-cos v2 keeps the BIASED one)
    ours.train(), theirs.train()
    with torch.no_grad():
        lo, lt = ours(x), theirs(x)
    diffs["train_logits"] = _scale(lo - lt)
    torch.testing.assert_close(lo, lt, rtol=0, atol=1e-10 * _scale(lt - bias))
    own_state = ours.state_dict()
    their_state = {k.removeprefix("0."): v for k, v in theirs.state_dict().items()}
    buffers = [(own_state[o], their_state[u]) for u, o in ours.source_key_map.items()
               if "running" in u or "num_batches" in u]
    diffs["running_stats"] = max((_scale(a.double() - b.double()) for a, b in buffers), default=0.0)
    assert diffs["running_stats"] <= 1e-12
    ours.eval(), theirs.eval()
    with torch.no_grad():
        lo, lt = ours(x), theirs(x)
    diffs["logits_after_step"] = _scale(lo - lt)
    torch.testing.assert_close(lo, lt, rtol=0, atol=1e-10 * _scale(lt - bias))
    return diffs


def _check_release(tmp_path, file_name: str, size: int) -> dict[str, float]:
    release = RELEASES[file_name]
    torch.manual_seed(0)
    theirs = _perturb(_package_release(file_name), size)
    path = tmp_path / file_name
    torch.save(theirs.state_dict(), path)  # the release layout: the package's own (float32) state dict
    ours = build_model(release.kind, release.arch, release.num_classes, weights=path, logit_bias=LOGIT_BIAS_1000)
    assert ours.weights_report.head_kept_fresh == []
    diffs = _compare(ours, theirs, size, LOGIT_BIAS_1000)
    print(file_name, diffs)  # the closing note's numbers (pytest -s)
    return diffs


@pytest.mark.parametrize("file_name, size", [
    ("resnet_18-68b4160fff.pth", 32),
    pytest.param("resnet_50-ead259efe4.pth", 64, marks=pytest.mark.slow),
    pytest.param("resnet_50-f46c1a4159.pth", 64, marks=pytest.mark.slow),  # model guidance's, keys "0."
    pytest.param("densenet_121-b8daf96afb.pth", 64, marks=pytest.mark.slow),
    pytest.param("bcos_vitc_s_patch1_14-cf55c88f0c.pth", 64, marks=pytest.mark.slow),  # keys "0."
])
def test_release_file_computes_what_the_bcos_package_computes(tmp_path, file_name, size):
    _check_release(tmp_path, file_name, size)


@pytest.mark.parametrize("arch", ["tiny", "tiny_densenet", "tiny_vit"])
def test_tiny_demo_variants_are_the_package_small_input_models(tmp_path, arch):
    torch.manual_seed(0)
    theirs = _perturb(_package_tiny(arch, 10), 32)
    torch.save(theirs.state_dict(), tmp_path / "tiny.pth")
    bias = -math.log(10 - 1)
    ours = build_model("bcos", arch, 10, weights=tmp_path / "tiny.pth", logit_bias=bias)
    assert len(ours.source_key_map) == len(theirs.state_dict())
    _compare(ours, theirs, 32, bias)


@pytest.mark.parametrize("file_name", [
    pytest.param("resnet_18-68b4160fff.pth", marks=pytest.mark.slow),  # fast: test_release_files.py
    pytest.param("resnet_50-f46c1a4159.pth", marks=pytest.mark.slow),
    pytest.param("densenet_121_long-5175461597.pth", marks=pytest.mark.slow),
    pytest.param("bcos_vitc_s_patch1_14-cf55c88f0c.pth", marks=pytest.mark.slow),
])
def test_standins_have_the_exact_layout_of_the_package_models(tmp_path, file_name):
    # written without the package; the package's model must take them strictly
    path = write_standin(file_name, tmp_path)
    entry = file_name.replace("_long-5175461597", "-b8daf96afb")
    theirs = _package_release(entry)
    state = torch.load(path, weights_only=True)
    assert list(state) == list(theirs.state_dict())
    theirs.load_state_dict(state)  # strict: same keys, same shapes


def test_a_model_that_max_pools_its_stem_is_detected(tmp_path):
    # the comparison can fail: a max-pooled stem, which B-cos v2's definition does not have
    torch.manual_seed(0)
    theirs = _perturb(_package_release("resnet_18-68b4160fff.pth"), 64)
    torch.save(theirs.state_dict(), tmp_path / "r18.pth")
    ours = build_model("bcos", "resnet18", 1000, weights=tmp_path / "r18.pth", logit_bias=LOGIT_BIAS_1000)
    ours.stages.mid1[2] = nn.MaxPool2d(3, 2, 1)
    with pytest.raises(AssertionError):
        _compare(ours, theirs, 64, LOGIT_BIAS_1000)
