"""`Guide` computes what the MG training step computes (Rao et al. 2023, Eq. (1)): on our ResNet-50
(vanilla, X-DNN, B-cos; same weights), for every tap x method x loss, the logits, the per-image
localisation loss and the parameter gradient of BCE + sum(loc) equal the internal path
(`attribution_context` + ``forward_taps`` + `attribution_from_tap` + `rightfocus.losses`, as in
`rightfocus.training.mg_task.train_one_epoch`). A representative subset runs fast, the full grid is slow.
"""

from __future__ import annotations

import functools
import itertools

import pytest
import torch
import torch.nn.functional as F
import torchvision

from rightfocus import Guide
from rightfocus.attributions import attribution_context, attribution_from_tap
from rightfocus.data.encoding import encode
from rightfocus.losses import LOSSES
from rightfocus.models import build_model
from rightfocus.models.taps import TAPS
from rightfocus.models.vanilla import VanillaResNet

SIZE = 32
NUM_CLASSES = 4
#: (model kind, method) pairs the training grids use: IntGrad via X-DNN, B-cos via its explanation mode
KIND_METHODS = [("vanilla", "ixg"), ("vanilla", "gradcam"), ("xdnn", "intgrad"), ("bcos", "bcos"), ("bcos", "gradcam")]


@functools.lru_cache(maxsize=None)
def _model(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(kind, "resnet50", NUM_CLASSES).train()
    if kind == "xdnn":  # Fixup starts the residual branches and the classifier at zero: all maps would be 0
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return model


def _batch(model: torch.nn.Module, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = encode(torch.rand(3, 3, SIZE, SIZE, generator=g), model.input_encoding)
    labels = (torch.rand(3, NUM_CLASSES, generator=g) > 0.5).float()
    targets = torch.tensor([0, 2, 3])
    labels[torch.arange(3), targets] = 1
    masks = torch.zeros(3, SIZE, SIZE)
    masks[0, 2:20, 5:30] = 1
    masks[1, 10:32, 0:12] = 1
    masks[2, 0:9, 0:9] = 1
    return images, labels, targets, masks


def _params(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The first and the last parameter tensors (the first is where truncated paths would show)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [params[0], params[-1]]


def _internal(model, images, labels, targets, masks, tap, method, loss):
    """The training step's computation (mg_task.train_one_epoch), one loss."""
    if tap == "input":
        images = images.clone().requires_grad_(True)
    with attribution_context(model, method):
        logits, acts = model.forward_taps(images, [tap])
        maps = attribution_from_tap(logits, acts[tap], targets, method, create_graph=True)
    return logits, LOSSES[loss](maps, masks)


def _grads(model, logits, labels, loc):
    total = F.binary_cross_entropy_with_logits(logits, labels) + loc.sum()
    return torch.autograd.grad(total, _params(model))


def _check(kind: str, method: str, tap: str, losses: list[str]) -> None:
    model = _model(kind)
    images, labels, targets, masks = _batch(model)
    for loss in losses:
        torch.manual_seed(1)
        ref_logits, ref_loc = _internal(model, images, labels, targets, masks, tap, method, loss)
        ref = _grads(model, ref_logits, labels, ref_loc)
        logits, loc = Guide(model, layer=tap, method=method, loss=loss)(images, targets, masks)
        got = _grads(model, logits, labels, loc)
        assert loc.shape == (3,)
        torch.testing.assert_close(logits, ref_logits, rtol=0, atol=0)
        torch.testing.assert_close(loc, ref_loc, rtol=1e-6, atol=1e-7,
                                   msg=lambda m: f"{kind} {method} {tap} {loss}: {m}")
        for a, b in zip(got, ref):
            assert b.abs().max() > 0
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()),
                                       msg=lambda m: f"{kind} {method} {tap} {loss}: {m}")


# each tap, each (kind, method) and each loss at least once
FAST = [
    ("vanilla", "gradcam", "final", "energy"),
    ("vanilla", "ixg", "input", "l1"),
    ("xdnn", "intgrad", "mid2", "ppce"),
    ("bcos", "bcos", "mid1", "rrr"),
    ("bcos", "gradcam", "mid3", "energy"),
]


@pytest.mark.parametrize("kind,method,tap,loss", FAST)
def test_guide_equals_training_step(kind, method, tap, loss):
    _check(kind, method, tap, [loss])


@pytest.mark.slow
@pytest.mark.parametrize("kind_method,tap", list(itertools.product(KIND_METHODS, TAPS)))
def test_guide_equals_training_step_full_grid(kind_method, tap):
    _check(*kind_method, tap, list(LOSSES))


def test_skipped_images_match_the_step_that_drops_them():
    """Target -1 (an image without a box of its class): loss 0 there, and the other images' losses
    equal the step that computes the maps for all and keeps the annotated ones (eval mode: images
    are independent)."""
    model = _model("vanilla").eval()
    try:
        images, labels, targets, masks = _batch(model)
        keep = torch.tensor([0, 2])
        _, ref_loc = _internal(model, images, labels, targets, masks, "mid3", "ixg", "l1")
        _, loc = Guide(model, "mid3", "ixg", "l1")(images, torch.tensor([0, -1, 3]), masks)
        assert loc[1] == 0
        torch.testing.assert_close(loc[keep], ref_loc[keep])
        (grad,) = torch.autograd.grad(loc.sum(), _params(model)[:1])
        (ref,) = torch.autograd.grad(ref_loc[keep].sum(), _params(model)[:1])
        torch.testing.assert_close(grad, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()))
    finally:
        model.train()


def test_module_names_hook_the_same_activation_as_taps():
    """A torchvision ResNet-50 guided at ``layer3`` through a forward hook equals our model built
    on the same modules guided at tap ``mid3`` (forward_taps)."""
    torch.manual_seed(0)
    net = torchvision.models.resnet50(num_classes=NUM_CLASSES).train()
    ours = VanillaResNet(net)  # shares net's modules, hence its weights
    images, labels, targets, masks = _batch(ours)
    logits, loc = Guide(net, "layer3", "ixg", "energy")(images, targets, masks)
    ref_logits, ref_loc = _internal(ours, images, labels, targets, masks, "mid3", "ixg", "energy")
    torch.testing.assert_close(logits, ref_logits, rtol=0, atol=0)
    torch.testing.assert_close(loc, ref_loc, rtol=1e-6, atol=1e-7)
    # the hook's copy changes the backward's summation order: float32 round-off, relative to the largest entry
    for a, b in zip(_grads(net, logits, labels, loc), _grads(net, ref_logits, labels, ref_loc)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
