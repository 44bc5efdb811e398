"""Attributions at any layer of ANY ``nn.Module`` classifier from ONE forward pass (Rao et al. 2023,
Sec. 3.2), differentiable w.r.t. the parameters (double backprop) for guidance.

`LayerTap` runs the model once and returns the logits and one activation:

- ``"input"``: the tensor the model receives (it is made to require grad);
- a tap name of a `TappedModel` (``mid1`` .. ``final``): its own ``forward_taps`` (the internal path);
- any other name from ``model.named_modules()``: a forward hook captures that module's output. The
  hook hands a copy on to the rest of the network, so a later in-place op (``ReLU(inplace=True)``,
  DenseNet's final ``F.relu(..., inplace=True)``) cannot change the captured activation.

`layer_maps` differentiates ``sum_i logits[i, targets[i]]`` w.r.t. that activation and combines
gradient and activation (`map_from_gradient`). Activations are ``[N, C, h, w]`` (channels first) or
tokens ``[N, L, D]`` (ViTs): the prefix tokens (class / register tokens) are dropped and the rest
laid out on the patch grid. `method_context` is what the forward AND that gradient must run in:
``torch.nn.attention.sdpa_kernel(MATH)`` (the fused scaled-dot-product kernels have no double
backward; the math one is plain differentiable ops) and, for ``bcos``, the model's explanation mode.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import warnings
from typing import Callable, ContextManager, Iterator, Sequence

import torch
from torch import Tensor, nn

from rightfocus.attributions.from_tap import TAP_METHODS, map_from_gradient
from rightfocus.models.taps import TappedModel

INPUT = "input"

#: leaf module types that keep a network positively homogeneous of degree 1 (with zero biases)
_HOMOGENEOUS: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.ReLU, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d,
)


def _sdpa_math() -> ContextManager:
    """Scaled-dot-product attention through the explicit math path (double-differentiable)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3: no kernel switch (and no fused CPU kernel either)
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.MATH])


def _has_dynamic_scales(model: nn.Module) -> bool:
    from rightfocus.models.bcos_layers import DynamicScale  # models may import late; keep the edge lazy

    return any(isinstance(m, DynamicScale) for m in model.modules())


def bcos_mode(model: nn.Module) -> tuple[Callable[[], ContextManager], bool]:
    """(a factory of the model's B-cos explanation-mode context, whether guidance through it is exact).

    rightfocus B-cos models (`rightfocus.models.explanation_mode`) read the switch at backward time,
    so the guidance gradient is exact (checked against finite differences on the first layer's weights). Other models whose modules have
    ``set_explanation_mode`` (the ``bcos`` package, B-cos-v2) detach the dynamic scales in the
    FORWARD pass: maps are exact, gradients through that forward treat the scales as constants.
    """
    if _has_dynamic_scales(model):
        from rightfocus.models import explanation_mode

        return (lambda: explanation_mode(model)), True
    toggles = [m for m in model.modules() if callable(getattr(m, "set_explanation_mode", None))]
    if not toggles:
        raise ValueError(
            f"method 'bcos' needs a B-cos model (modules with an explanation mode); {type(model).__name__} "
            "has none: use method 'ixg' or 'gradcam'"
        )

    @contextlib.contextmanager
    def toggled() -> Iterator[None]:
        previous = [bool(getattr(m, "is_in_explanation_mode", False)) for m in toggles]
        for m in toggles:
            m.set_explanation_mode(True)
        try:
            yield
        finally:
            for m, was in zip(toggles, previous):
                m.set_explanation_mode(was)

    return toggled, False


def method_context(model: nn.Module, method: str) -> ContextManager:
    """The context the forward pass AND the attribution gradient run in (the loss's backward runs
    outside it): math attention always, plus the explanation mode for ``bcos``."""
    stack = contextlib.ExitStack()
    stack.enter_context(_sdpa_math())
    if method == "bcos":
        stack.enter_context(bcos_mode(model)[0]())
    return stack


def is_bias_free(model: nn.Module) -> bool:
    """Whether IxG equals IntGrad with a zero baseline (X-DNN, Hesse et al. 2021): the network is
    positively homogeneous of degree 1. True for rightfocus X-DNNs; otherwise every leaf module must be
    a conv / linear / ReLU / pooling / identity type, every bias zero except the last linear's (a
    logit bias only shifts f(0)). Functional ops inside ``forward`` are not seen."""
    if getattr(model, "kind", None) == "xdnn":
        return True
    leaves = [m for m in model.modules() if not next(m.children(), None)]
    if any(not isinstance(m, _HOMOGENEOUS) for m in leaves):
        return False
    linears = [m for m in leaves if isinstance(m, nn.Linear)]
    last = linears[-1] if linears else None
    return all(
        m is last or getattr(m, "bias", None) is None or not bool(torch.count_nonzero(m.bias))
        for m in leaves
    )


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
    if method not in TAP_METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {list(TAP_METHODS)}")
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
    return map_from_gradient(spatial(grad, image_size, prefix_tokens), act, method)


def warn_if_not_exact(model: nn.Module, method: str) -> None:
    """Say what ``intgrad`` computes on a model with additive biases."""
    if method == "intgrad" and not is_bias_free(model):
        warnings.warn(
            f"{type(model).__name__} is not bias-free (X-DNN), so single-pass 'intgrad' computes "
            "Input x Gradient at the layer (the integrand at alpha = 1), not the path integral; it equals "
            "IntGrad with a zero baseline only for positively homogeneous networks",
            UserWarning,
            stacklevel=3,
        )
