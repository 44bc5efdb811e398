"""Attributions at any layer of ANY ``nn.Module`` classifier from ONE forward pass (Rao et al. 2023,
Sec. 3.2), differentiable w.r.t. the parameters (double backprop) for guidance.

`LayerTap` runs the model once and returns the logits and one activation:

- ``"input"``: the tensor the model receives (it is made to require grad);
- a tap name of a `TappedModel` (``mid1`` .. ``final``): its own ``forward_taps`` (the internal path);
- any other name from ``model.named_modules()``: a forward hook captures that module's output. The
  hook hands a copy on to the rest of the network, so a later in-place op (``ReLU(inplace=True)``,
  DenseNet's final ``F.relu(..., inplace=True)``) cannot change the captured activation.

`layer_maps` differentiates ``sum_i logits[i, targets[i]]`` w.r.t. that activation and combines
gradient and activation by the method's rule (`AttributionMethod.combine`). Activations are ``[N, C, h, w]`` (channels first) or
tokens ``[N, L, D]`` (ViTs): the prefix tokens (class / register tokens) are dropped and the rest
laid out on the patch grid. `attribution_context` (`method_context`: the same without the exactness
check) is what the forward AND that gradient must run in: math attention (the fused
scaled-dot-product kernels have no double backward) and the method's own context (``bcos``: the
model's explanation mode).
"""

from __future__ import annotations

import difflib
import math
from typing import ContextManager, Sequence

import torch
from torch import Tensor, nn

from rightfocus.attributions.methods import TAP_METHODS, attribution_context, bcos_mode, get_method, is_bias_free
from rightfocus.models.taps import TappedModel

__all__ = ["INPUT", "LayerTap", "as_targets", "bcos_mode", "find_module", "is_bias_free", "layer_maps",
           "method_context", "spatial", "token_grid", "warn_if_not_exact"]

INPUT = "input"


def method_context(model: nn.Module, method: str) -> ContextManager:
    """`attribution_context` without the exactness check (``strict=None``): math attention and the
    method's own context."""
    return attribution_context(model, method, strict=None)


def find_module(model: nn.Module, layer: str) -> nn.Module:
    """The submodule called `layer`; a clear error listing close matches and valid names otherwise."""
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module name (str) or 'input', got {type(layer).__name__}")
    modules = dict(model.named_modules())
    if layer and layer in modules:
        return modules[layer]
    names = [n for n in modules if n]
    taps = [t for t in getattr(model, "taps", ()) if t != INPUT] if isinstance(model, TappedModel) else []
    close = difflib.get_close_matches(layer, names + taps, n=5, cutoff=0.5)
    valid = ["input", *taps, *names]
    listed = valid if len(valid) <= 40 else ["input", *taps, *[n for n, _ in model.named_children()]]
    more = "" if len(valid) <= 40 else f" (top level shown; all {len(names)}: [n for n, _ in model.named_modules()])"
    hint = f"; close matches: {close}" if close else ""
    raise ValueError(
        f"{type(model).__name__} has no layer {layer!r}{hint}. Valid layers: {listed}{more}"
    )


def _check_logits(logits: object, n: int) -> Tensor:
    if not torch.is_tensor(logits):
        raise TypeError(
            f"the model returned {type(logits).__name__}, not a logits tensor [N, K]; wrap it so that "
            "forward returns the logits (e.g. Inception / GoogLeNet: model.eval() or drop the aux outputs)"
        )
    if logits.dim() != 2 or logits.shape[0] != n:
        raise ValueError(f"the model's output must be logits [N={n}, K], got shape {tuple(logits.shape)}")
    return logits


def as_targets(targets: Tensor | Sequence[int], n: int, num_classes: int | None = None,
               device: torch.device | None = None) -> Tensor:
    """One class index per image [n] (-1: no attribution for that image); clear errors otherwise.
    Checked where the targets are (host targets: no device synchronisation), then moved to `device`."""
    t = torch.as_tensor(targets)
    if t.is_floating_point() or t.dim() > 1:
        raise ValueError(
            f"targets must be one class index per image [N], got shape {tuple(t.shape)} dtype {t.dtype}; "
            "for multi-hot labels pick one class per image (e.g. labels.argmax(1))"
        )
    t = t.long().reshape(-1)
    if t.numel() != n:
        raise ValueError(f"batch sizes differ: {n} images but {t.numel()} targets; pass one target per image")
    if num_classes is not None and t.numel() and (int(t.max()) >= num_classes or int(t.min()) < -1):
        raise ValueError(f"targets must lie in [0, {num_classes}) (or -1 to skip an image), got {t.tolist()}")
    return t if device is None else t.to(device, non_blocking=True)


def token_grid(length: int, image_size: Sequence[int], prefix_tokens: int | None) -> tuple[int, int, int]:
    """(prefix tokens, grid h, grid w) for `length` tokens of an image of `image_size` (H, W).
    Without `prefix_tokens`, the smallest count 0..8 whose remainder fills a grid of the image's
    aspect ratio."""
    H, W = (int(s) for s in image_size)
    for p in ([prefix_tokens] if prefix_tokens is not None else range(0, 9)):
        n = length - p
        if n <= 0:
            continue
        h, w = round(math.sqrt(n * H / W)), round(math.sqrt(n * W / H))
        if h * w == n:
            return p, h, w
    raise ValueError(
        f"cannot lay {length} tokens out on a patch grid of a {H}x{W} image"
        + (f" after {prefix_tokens} prefix tokens" if prefix_tokens is not None else "")
        + "; pass prefix_tokens= (class / register tokens before the patch tokens)"
    )


def spatial(t: Tensor, image_size: Sequence[int], prefix_tokens: int | None) -> Tensor:
    """An activation (or its gradient) as [N, C, h, w]: channels-first maps unchanged, tokens
    [N, L, D] without their prefix tokens on the patch grid."""
    if t.dim() == 4:
        return t
    if t.dim() == 3:
        p, h, w = token_grid(t.shape[1], image_size, prefix_tokens)
        return t[:, p:].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)
    raise ValueError(
        f"the layer's output has shape {tuple(t.shape)}: attributions need [N, C, h, w] maps or [N, L, D] "
        "tokens; choose an earlier layer (one with spatial positions)"
    )


class LayerTap:
    """ONE forward pass of `model` that also returns the activation at `layer` (see module docstring).

    prefix_tokens : tokens before the patch tokens of a ViT layer (class / register tokens); default:
        ``model.num_prefix_tokens`` (timm), 1 for torchvision's ViT, otherwise inferred.
    """

    def __init__(self, model: nn.Module, layer: str = INPUT, prefix_tokens: int | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model, self.layer = model, layer
        self.tapped = isinstance(model, TappedModel) and layer in model.taps and layer != INPUT
        self.module = None if layer == INPUT or self.tapped else find_module(model, layer)
        if prefix_tokens is None:
            prefix_tokens = getattr(model, "num_prefix_tokens", None)
        if prefix_tokens is None and getattr(model, "class_token", None) is not None:
            prefix_tokens = 1  # torchvision VisionTransformer
        self.prefix_tokens = prefix_tokens

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(logits [N, K], activation at the layer) from one forward pass."""
        if not torch.is_tensor(images) or images.dim() != 4:
            raise ValueError(f"images must be a tensor [N, C, H, W], got {getattr(images, 'shape', type(images))}")
        try:
            return self._forward(images)
        except RuntimeError as exc:
            expected = _input_channels(self.model)
            if expected is None or expected == images.shape[1]:
                raise
            fix = (f"repeat the channel: images.expand(-1, {expected}, -1, -1)" if images.shape[1] == 1 else
                   f"pass {expected}-channel images")
            raise ValueError(f"{type(self.model).__name__} takes {expected}-channel images, got {images.shape[1]} "
                             f"channel(s) (grayscale?); {fix}, normalised as the model expects") from exc

    def _forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        n = images.shape[0]
        if self.layer == INPUT:
            x = images if images.requires_grad else images.detach().requires_grad_(True)
            if isinstance(self.model, TappedModel):
                logits, acts = self.model.forward_taps(x, [INPUT])
            else:
                logits = self.model(x)
            return _check_logits(logits, n), x
        if self.tapped:
            logits, acts = self.model.forward_taps(images, [self.layer])
            return _check_logits(logits, n), acts[self.layer]
        captured: list[object] = []

        def hook(module: nn.Module, args: tuple, output: object) -> object:
            captured.append(output)
            # the network continues with a copy: in-place ops after the layer leave `output` intact
            return output.clone() if torch.is_tensor(output) else None

        handle = self.module.register_forward_hook(hook)
        try:
            logits = self.model(images)
        finally:
            handle.remove()
        name = f"layer {self.layer!r} ({type(self.module).__name__})"
        if not captured:
            raise ValueError(f"{name} did not run in {type(self.model).__name__}'s forward pass; choose a layer "
                             "between the input and the logits")
        if len(captured) > 1:
            raise ValueError(f"{name} ran {len(captured)} times in one forward pass (a shared module, e.g. the "
                             "one ReLU of a torchvision Bottleneck); choose a module that runs once, e.g. its block")
        if not torch.is_tensor(captured[0]):
            raise TypeError(f"{name} returns {type(captured[0]).__name__}, not a tensor; choose a module whose "
                            "output is the activation tensor (e.g. its parent block)")
        return _check_logits(logits, n), captured[0]


def _input_channels(model: nn.Module) -> int | None:
    """The input channels of the model's first convolution (None without one)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return None if conv is None else int(conv.in_channels)


def layer_maps(
    logits: Tensor,
    activation: Tensor,
    targets: Tensor,
    method: str,
    image_size: Sequence[int],
    create_graph: bool = False,
    prefix_tokens: int | None = None,
    layer: str = "the layer",
) -> Tensor:
    """Maps [N, h, w] at the layer's resolution for class ``targets[i]`` of image i; images with
    target -1 get a zero map (and their logits no gradient). `activation` must be in the graph of
    `logits` (from `LayerTap.forward`)."""
    m = get_method(method)
    if not m.single_pass:
        raise ValueError(f"attribution method {method!r} is not computed from one forward pass; choose one of "
                         f"{list(TAP_METHODS)}")
    targets = as_targets(targets, logits.shape[0], logits.shape[1])  # host targets: no synchronisation
    valid = targets >= 0
    act = spatial(activation, image_size, prefix_tokens)
    if not bool(valid.any()):
        return act.new_zeros(act.shape[0], *act.shape[2:])
    all_valid = bool(valid.all())
    targets, valid = targets.to(logits.device, non_blocking=True), valid.to(logits.device, non_blocking=True)
    picked = logits.gather(1, targets.clamp_min(0)[:, None])[:, 0]
    selected = (picked if all_valid else torch.where(valid, picked, torch.zeros_like(picked))).sum()
    (grad,) = torch.autograd.grad(selected, activation, create_graph=create_graph, allow_unused=True)
    if grad is None:
        raise ValueError(f"the logits do not depend on {layer}'s output; choose a layer between the input "
                         "and the logits")
    return m.combine(spatial(grad, image_size, prefix_tokens), act)


def warn_if_not_exact(model: nn.Module, method: str) -> None:
    """Warn when the single-pass map of `method` is not exact on `model` (``intgrad`` on a model with
    additive biases computes Input x Gradient); refuse a method that cannot run on it."""
    get_method(method).check(model, strict=False)
