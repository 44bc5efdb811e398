"""`rightfocus.Guide` on models that are not ours: captum as the oracle for the maps, float64 finite
differences for the guidance gradient (torchvision ConvNeXt and ViT, timm ViT through its fused
attention), exact identities (B-cos completeness, IntGrad = IxG on a bias-free net), bad inputs."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import InputXGradient, IntegratedGradients, LayerGradCam
from torch import nn
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.vision_transformer import VisionTransformer

from rightfocus import Guide
from rightfocus.attributions import attribute
from rightfocus.data import boxes_to_masks
from finite_differences import assert_matches_central_differences


def _batch(n: int = 2, size: int = 32, dtype=torch.float32, channels: int = 3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, size, size, generator=g, dtype=dtype)
    boxes = [torch.tensor([[1.0, 2, 3, size // 2 + 5, size - 4]]), torch.tensor([[2.0, size // 3, 0, size, size // 2]])]
    targets = torch.tensor([1, 2])
    masks = boxes_to_masks(boxes[:n], targets[:n], (size, size)).to(dtype)
    return x, targets[:n], masks


# ---------------------------------------------------------------- maps: captum as the oracle


@pytest.mark.parametrize("layer", ["layer4", "layer3", "layer2.0"])
def test_gradcam_equals_captum_layer_gradcam(layer):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4).eval()
    x, targets, _ = _batch()
    module = dict(model.named_modules())[layer]
    ref = LayerGradCam(model, module).attribute(x, target=targets, relu_attributions=True)[:, 0]
    got = Guide(model, layer, "gradcam").attribute(x, targets, upsample=False)
    assert ref.abs().max() > 0
    torch.testing.assert_close(got, ref)
    up = Guide(model, layer, "gradcam").attribute(x, targets)
    torch.testing.assert_close(up, F.interpolate(ref[:, None], size=x.shape[-2:], mode="bilinear")[:, 0])


@pytest.mark.parametrize("source,layer", [("torchvision_convnext", "features.3"), ("timm_convnext", "stages.1"),
                                          ("timm_resnet", "layer2")])
def test_gradcam_equals_captum_on_convnext_and_timm(source, layer):
    torch.manual_seed(0)
    if source == "torchvision_convnext":
        model = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], layer_scale=0.5, num_classes=4)
    else:
        timm = pytest.importorskip("timm")
        name = {"timm_convnext": "convnext_atto", "timm_resnet": "resnet10t"}[source]
        model = timm.create_model(name, pretrained=False, num_classes=4)
    model = model.eval()
    x, targets, _ = _batch()
    module = dict(model.named_modules())[layer]
    ref = LayerGradCam(model, module).attribute(x, target=targets, relu_attributions=True)[:, 0]
    assert ref.abs().max() > 0
    torch.testing.assert_close(Guide(model, layer, "gradcam").attribute(x, targets, upsample=False), ref)


@pytest.mark.parametrize("arch", ["resnet18", "timm_vit"])
def test_ixg_at_input_equals_captum_input_x_gradient(arch):
    torch.manual_seed(0)
    if arch == "timm_vit":
        timm = pytest.importorskip("timm")
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2,
                                  embed_dim=16, num_heads=2, num_classes=4).eval()
    else:
        model = torchvision.models.resnet18(num_classes=4).eval()
    x, targets, _ = _batch()
    ref = InputXGradient(model).attribute(x, target=targets).sum(1)
    torch.testing.assert_close(Guide(model, "input", "ixg").attribute(x, targets), ref)
    # the functional entry point `attribute` accepts any nn.Module as well (same code)
    torch.testing.assert_close(attribute(model, x, targets, "ixg"), ref)


def test_intgrad_is_exact_on_a_bias_free_network():
    """Positively homogeneous (no biases, ReLU, pooling): single-pass IntGrad = captum's
    IntegratedGradients (zero baseline, many steps); no warning. With biases it warns."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 6, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(6, 3)).double()
    x, targets, _ = _batch(size=16, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = Guide(net, "input", "intgrad").attribute(x, targets)
    ref = IntegratedGradients(net).attribute(x, target=targets, n_steps=200, method="riemann_right").sum(1)
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-6 * float(ref.abs().max()))
    with pytest.warns(UserWarning, match="Input x Gradient"):
        Guide(torchvision.models.resnet18(num_classes=3), "layer3", "intgrad")


def test_bcos_package_model_explanations_are_complete():
    """B-cos (the bcos package's own model): in explanation mode the input contributions sum to the
    logit minus its fixed logit bias (dynamic linearity); Guide says its gradient is not exact there."""
    bcos_resnet = pytest.importorskip("bcos.models.resnet")
    torch.manual_seed(0)
    model = bcos_resnet.cifar10_resnet20(num_classes=3).eval()
    x, targets, _ = _batch(size=16)
    x = torch.cat([x.sigmoid(), 1 - x.sigmoid()], 1)
    with pytest.warns(UserWarning, match="detaches"):
        guide = Guide(model, "input", "bcos")
    assert not guide.exact
    logits = model(x).detach()
    maps = guide.attribute(x, targets)
    bias = model.logit_layer.logit_bias
    torch.testing.assert_close(maps.sum((1, 2)), logits.gather(1, targets[:, None])[:, 0] - bias)
    assert not any(m.is_in_explanation_mode for m in model.modules() if hasattr(m, "is_in_explanation_mode"))


def test_layer_with_inplace_relu_after_it_keeps_its_own_output():
    """DenseNet applies F.relu(inplace=True) to `features`; the map uses the layer's own output."""
    torch.manual_seed(0)
    model = torchvision.models.DenseNet(growth_rate=4, block_config=(1, 1), num_init_features=8, num_classes=3).eval()
    x, targets, _ = _batch()
    got = Guide(model, "features", "ixg").attribute(x, targets, upsample=False)
    feats = model.features(x).detach().requires_grad_(True)
    logits = model.classifier(torch.flatten(F.adaptive_avg_pool2d(F.relu(feats), 1), 1))
    (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), feats)
    torch.testing.assert_close(got, (grad * feats).sum(1).detach())


def test_vit_token_layers_become_patch_grids():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16,
                              num_classes=3).eval()
    x, targets, masks = _batch()
    guide = Guide(model, "encoder.layers.encoder_layer_1", "gradcam", "energy")
    assert guide.tap.prefix_tokens == 1
    assert guide.attribute(x, targets, upsample=False).shape == (2, 4, 4)
    assert guide.attribute(x, targets).shape == (2, 32, 32)
    _, loc = guide(x, targets, masks)
    assert loc.shape == (2,) and loc.requires_grad


# ---------------------------------------------------------------- guidance gradient: finite differences


def _fd_check(model: nn.Module, layer: str, method: str, loss: str, param: torch.Tensor, size: int = 16,
              picks: int = 4, h: float = 1e-6, channels: int = 3) -> None:
    """d sum(loc) / d param from Guide's double backprop vs central differences, float64."""
    x, targets, masks = _batch(size=size, dtype=torch.float64, channels=channels)
    guide = Guide(model, layer, method, loss)
    _, loc = guide(x, targets, masks)
    (grad,) = torch.autograd.grad(loc.sum(), param)
    flat = grad.flatten()
    assert flat.abs().max() > 0, "no guidance gradient"
    assert_matches_central_differences(param, flat, lambda: guide(x, targets, masks)[1].detach().sum(),
                                       flat.abs().topk(picks).indices.tolist(), h=h, label=(layer, method, loss))


@pytest.mark.parametrize("layer,method,loss", [("features.3", "gradcam", "l1"), ("input", "ixg", "energy"),
                                               ("features.1", "ixg", "rrr")])
def test_finite_differences_torchvision_convnext(layer, method, loss):
    """A small torchvision ConvNeXt (GELU, LayerNorm: smooth, so differences are clean)."""
    torch.manual_seed(0)
    model = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], layer_scale=0.5, num_classes=3)
    model = model.double().eval()
    _fd_check(model, layer, method, loss, model.features[0][0].weight)


def test_finite_differences_torchvision_vit():
    """torchvision's ViT (nn.MultiheadAttention -> scaled-dot-product attention) at a token layer."""
    torch.manual_seed(0)
    model = VisionTransformer(image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16,
                              num_classes=3).double().train()
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision starts the head at zero: no maps at all
    _fd_check(model, "encoder.layers.encoder_layer_0", "ixg", "ppce", model.conv_proj.weight)


@pytest.mark.parametrize("layer,method,loss", [("blocks.0", "gradcam", "energy"), ("input", "ixg", "l1")])
def test_finite_differences_timm_vit_with_fused_attention(layer, method, loss):
    """timm's ViT calls the fused scaled-dot-product kernel (no double backward); Guide's forward
    switches it to the math path, and the guidance gradient is exact."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=16, patch_size=4, depth=2,
                              embed_dim=8, num_heads=2, num_classes=3).double().eval()
    assert model.blocks[0].attn.fused_attn  # the fused path is the one in use
    _fd_check(model, layer, method, loss, model.patch_embed.proj.weight)


def test_finite_differences_rightfocus_bcos_through_a_hooked_module():
    """Our B-cos model guided at a module name (hook path, not its tap) in explanation mode: exact
    guidance gradient on the FIRST layer's weights (where truncated paths would show)."""
    from rightfocus.models import build_model

    torch.manual_seed(0)
    model = build_model("bcos", "tiny", 3).double().eval()
    first = next(p for p in model.parameters() if p.dim() == 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exact: no warning
        _fd_check(model, "stages.mid2", "bcos", "energy", first, channels=6)


# ---------------------------------------------------------------- bad inputs: one clear error each


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=4).eval()


def test_mismatched_batch_sizes(resnet):
    x, targets, masks = _batch()
    for args in [(x, targets[:1], masks), (x, targets, masks[:1]), (x[:1], targets, masks)]:
        with pytest.raises(ValueError, match="batch sizes differ"):
            Guide(resnet, "layer4", "gradcam")(*args)
    with pytest.raises(ValueError, match=r"masks must be a tensor \[N, H, W\]"):
        Guide(resnet, "layer4", "gradcam")(x, targets, masks[:, None])


def test_unknown_layer_lists_close_matches(resnet):
    with pytest.raises(ValueError, match=r"no layer 'layer5'.*close matches: \['layer4'.*Valid layers: \['input'"):
        Guide(resnet, "layer5")


def test_layer_not_on_the_path_to_the_logits(resnet):
    class WithUnused(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc, self.unused = nn.Conv2d(3, 4, 3), nn.Linear(4, 3), nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    model = WithUnused()
    x, targets, masks = _batch()
    with pytest.raises(ValueError, match="did not run"):
        Guide(model, "unused")(x, targets, masks)
    with pytest.raises(ValueError, match="ran 2 times"):
        Guide(resnet, "layer4.0.relu")(x, targets, masks)
    with pytest.raises(ValueError, match="spatial"):
        Guide(resnet, "fc")(x, targets, masks)


def test_bad_method_loss_and_targets(resnet):
    x, targets, masks = _batch()
    with pytest.raises(ValueError, match="unknown attribution method"):
        Guide(resnet, "layer4", "lrp")
    with pytest.raises(ValueError, match="unknown localisation loss"):
        Guide(resnet, "layer4", "ixg", "dice")
    with pytest.raises(ValueError, match="needs a B-cos model"):
        Guide(resnet, "layer4", "bcos")
    with pytest.raises(ValueError, match="one class index per image"):
        Guide(resnet, "layer4").attribute(x, F.one_hot(targets, 4).float())
    with pytest.raises(ValueError, match="one class index per image"):
        Guide(resnet, "layer4")(x, F.one_hot(targets, 4).float(), masks)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 4\)"):
        Guide(resnet, "layer4").attribute(x, torch.tensor([0, 9]))


def test_skipped_targets_and_the_model_left_clean(resnet):
    x, targets, masks = _batch()
    logits, loc = Guide(resnet, "layer3", "ixg", "l1")(x, torch.tensor([-1, 2]), masks)
    assert loc[0] == 0 and loc[1] > 0
    _, none = Guide(resnet, "layer3", "ixg", "l1")(x, torch.tensor([-1, -1]), masks)
    assert (none == 0).all()
    assert all(not m._forward_hooks for m in resnet.modules())


def test_readme_guide_block_runs_and_lowers_its_loss(tmp_path):
    """The README's "Guide your own model" block, executed as a user would paste it: it runs, and its
    energy loss falls on its fixed batch (the guidance gradient points the right way)."""
    import re

    from readme_blocks import run_block, runnable_blocks

    (block,) = runnable_blocks("tests/test_guide.py")
    out = run_block(block, tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    losses = [float(v) for v in re.findall(r"energy loss ([0-9.]+)", out.stdout)]
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0], out.stdout
    assert 0.0 <= float(re.search(r"EPG ([0-9.]+)", out.stdout).group(1)) <= 1.0


# ---------------------------------------------------------------- layers whose maps cannot localise: one warning each


def _small_vit(layers: int = 3, head_std: float | None = 0.5) -> VisionTransformer:
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=layers, num_heads=2, hidden_dim=16, mlp_dim=32,
                              num_classes=3)
    if head_std is not None:
        nn.init.normal_(model.heads.head.weight, std=head_std)  # a trained head (torchvision starts it at zero)
    return model


def test_vit_last_block_warns_and_names_the_second_to_last_block():
    """torchvision's ViT reads only the class token after its last block: autograd (the oracle) gives
    zero gradient at every patch token there, and Guide says so and names the block before it."""
    model = _small_vit()
    x, targets, masks = _batch()
    last = "encoder.layers.encoder_layer_2"
    with pytest.warns(UserWarning, match="only the class token.*guide at 'encoder.layers.encoder_layer_1'"):
        _, loc = Guide(model, last, "ixg", "energy")(x, targets, masks)
    assert torch.equal(loc.detach(), torch.ones(2))  # energy loss at its maximum: no patch attribution at all
    tokens = {}
    hook = model.encoder.layers[2].register_forward_hook(lambda m, a, o: tokens.update(t=o))
    logits = model(x)
    hook.remove()
    (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), tokens["t"])
    assert grad[:, 1:].abs().max() == 0 and grad[:, 0].abs().max() > 0  # the fact the warning states
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the suggested layer: no warning, and the loss moves
        guide = Guide(model, "encoder.layers.encoder_layer_1", "ixg", "energy")
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        first = None
        for _ in range(5):
            _, loc = guide(x, targets, masks)
            first = float(loc.detach().sum()) if first is None else first
            opt.zero_grad()
            loc.sum().backward()
            opt.step()
    assert float(loc.detach().sum()) < first < 2.0


def test_vit_zero_head_warns_until_the_head_is_trained():
    model = _small_vit(head_std=None)  # torchvision's own init: head weights all zero
    x, targets, masks = _batch()
    with pytest.warns(UserWarning, match="'heads.head' is all zeros"):
        Guide(model, "encoder.layers.encoder_layer_1", "ixg", "energy")(x, targets, masks)


def test_torchvision_vit_b_16_docstring_layer():
    """The layer the docstring names for torchvision's vit_b_16 (12 blocks) is its second-to-last block."""
    from rightfocus.attributions.layer_choice import vit_layer

    model = VisionTransformer(image_size=64, patch_size=16, num_layers=12, num_heads=1, hidden_dim=4, mlp_dim=4)
    assert vit_layer(model) == "encoder.layers.encoder_layer_10"  # vit_b_16's 12 blocks, tiny widths
    import rightfocus.guide as guide_module

    assert "encoder.layers.encoder_layer_10" in guide_module.__doc__


def test_one_by_one_layer_warns_and_names_the_last_spatial_block():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4).eval()
    x, targets, masks = _batch(size=64)
    with pytest.warns(UserWarning, match=r"'avgpool' of ResNet has one spatial position \(1x1\).*guide at 'layer4'"):
        Guide(model, "avgpool", "gradcam")(x, targets, masks)


def test_masks_of_another_size_all_zero_masks_and_grayscale_input(resnet):
    x, targets, masks = _batch()
    big = F.interpolate(masks[:, None], size=(50, 50))[:, 0]
    with pytest.raises(ValueError, match=r"masks are \(50, 50\) but the images are \(32, 32\)"):
        Guide(resnet, "layer3")(x, targets, big)
    with pytest.warns(UserWarning, match=r"masks of image\(s\) \[1\] are all zero"):
        Guide(resnet, "layer3")(x, targets, torch.stack([masks[0], torch.zeros_like(masks[1])]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty mask of an image that is not guided is never read
        Guide(resnet, "layer3")(x, targets, torch.stack([masks[0], torch.zeros_like(masks[1])]),
                                guided=torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"takes 3-channel images, got 1 channel.*expand\(-1, 3, -1, -1\)"):
        Guide(resnet, "layer3")(x[:, :1], targets, masks)


def test_a_one_by_one_tap_of_a_rightfocus_model_names_the_tap_before_it():
    from rightfocus.models import build_model

    torch.manual_seed(0)
    model = build_model("vanilla", "tiny", 3).eval()
    x, targets, masks = _batch(size=8)  # the tiny ResNet's final tap is 1x1 at 8 px, mid3 is 2x2
    with pytest.warns(UserWarning, match=r"layer 'final' of VanillaResNet has one spatial position.*guide at 'mid3'"):
        Guide(model, "final", "gradcam")(x, targets, masks)
