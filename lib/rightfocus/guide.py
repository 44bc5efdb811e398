"""`Guide`: model guidance (Rao et al. 2023, Eq. (1)) for ANY ``nn.Module`` classifier.

    from rightfocus import Guide
    guide = Guide(model, layer="layer4", method="gradcam", loss="energy")  # layer: module name or "input"
    logits, loc = guide(images, targets, masks)   # ONE forward; loc: per-image loss [N], differentiable
    loss = F.cross_entropy(logits, labels) + lam * loc.sum()
    loss.backward()                               # outside any context: exact guidance gradient
    maps = guide.attribute(images, targets)       # [N, H, W] at input resolution, for plots and metrics

Methods (attributions at the layer, from the one forward pass; `rightfocus.attributions.layer`):
``ixg`` (Input x Gradient), ``gradcam`` (ReLU(sum_c mean_hw(grad_c) act_c)), ``intgrad`` (exact IntGrad
with a zero baseline on bias-free, positively homogeneous models such as X-DNNs, where it equals IxG;
on any other model it computes IxG and `Guide` warns so), ``bcos`` (IxG in the model's B-cos
explanation mode). Losses (`rightfocus.losses`, post-processing at the layer's resolution, then
bilinear upsampling to the masks): ``energy``, ``l1``, ``ppce``, ``rrr``, ``distill``. Masks are
[N, H, W] in [0, 1]: 1 inside the union of the target class's boxes
(`rightfocus.data.boxes_to_masks(boxes, targets, (H, W))`), or soft masks (segmentations, a teacher's
maps, AIM's masks: `rightfocus.training.mask_sources`; what a soft mask means for each loss:
`rightfocus.losses`).
The paper's training step sums `loc` over the batch (its lambdas assume that) and draws one
ground-truth class per image as the target.

Attention models: the forward runs with the math scaled-dot-product kernel, whose double backward
exists (the fused ones have none), so torchvision and timm ViTs are guided as they are.

Choosing the layer: its maps must vary over the image. A ViT that classifies from its class token
(torchvision's ``VisionTransformer``, timm's ``global_pool="token"``) reads only that token after
its last block, so every patch's attribution there is exactly zero: guide at the SECOND-TO-LAST block
(torchvision ``vit_b_16``: ``"encoder.layers.encoder_layer_10"``; timm: ``"blocks.10"``), whose patch
tokens reach the class token through the last block's attention. A 1x1 layer (``"avgpool"``) gives
one value per image. torchvision's ViT also starts with its head at zero, so every map is zero until
the classification loss has trained the head. `Guide` checks the maps of its first calls and warns
with the reason and a layer that works (`rightfocus.attributions.layer_choice`).
"""

from __future__ import annotations

import warnings
import weakref
from typing import Sequence

import torch
from torch import Tensor, nn

from rightfocus.attributions import upsample_maps
from rightfocus.attributions.layer import INPUT, LayerTap, as_targets, layer_maps
from rightfocus.attributions.layer_choice import ZERO_HEAD, explain, map_problem, suggest_layer
from rightfocus.attributions.methods import GUIDE_METHODS, attribution_context, get_method
from rightfocus.losses import get_loss

#: per model: the (layer, method) pairs whose maps were seen to vary, or were warned about for good
#: (a `Guide` built anew each training step checks only its first step)
_SETTLED: "weakref.WeakKeyDictionary[nn.Module, set[tuple[str, str]]]" = weakref.WeakKeyDictionary()

__all__ = ["GUIDE_METHODS", "Guide"]


class Guide:
    """Differentiable attributions and localisation losses for any classifier, from ONE forward pass.

    Parameters
    ----------
    model : any ``nn.Module`` whose forward maps images [N, C, H, W] to logits [N, K] (a rightfocus
        `TappedModel` too; its tap names ``mid1`` .. ``final`` are accepted as layers). Images must be
        encoded the way the model expects (e.g. ImageNet-normalised).
    layer : ``"input"`` or a name from ``model.named_modules()`` (e.g. ``"layer4"``, ``"features"``,
        ``"blocks.5"``). Its output must be [N, C, h, w] or ViT tokens [N, L, D], with more than one
        spatial position. ViTs with a class token: the second-to-last block (e.g.
        ``"encoder.layers.encoder_layer_10"`` of torchvision's ``vit_b_16``), never the last one, where
        every patch's attribution is zero (see the module docstring). `Guide` warns when the maps of
        its first call are all constant over the image, with the reason and a layer that works.
    method : a registered single-pass, differentiable method (`GUIDE_METHODS`): ixg | gradcam | intgrad |
        bcos, and any added one (see the module docstring).
    loss : a registered localisation loss (`rightfocus.losses.LOSSES`): energy | l1 | ppce | rrr | distill
        (explanation distillation toward soft target maps), and any added one.
    prefix_tokens : ViT layers only: class / register tokens before the patch tokens (default: timm's
        ``num_prefix_tokens``, 1 for torchvision's ViT, else inferred from the token count).

    The model's train / eval mode is left as it is (batch norm in train mode mixes the images of a
    batch, as in the paper's training). The model is not modified: a forward hook lives only during a
    call.
    """

    def __init__(self, model: nn.Module, layer: str = INPUT, method: str = "ixg", loss: str = "energy",
                 *, prefix_tokens: int | None = None) -> None:
        m = get_method(method)
        if method not in GUIDE_METHODS:
            raise ValueError(f"attribution method {method!r} has no differentiable single-pass map; choose one of "
                             f"{list(GUIDE_METHODS)}")
        self._loss = get_loss(loss)
        self.tap = LayerTap(model, layer, prefix_tokens)
        self._warned: set[str] = set()
        self.model, self.layer, self.method, self.loss = model, layer, method, loss
        #: whether the guidance gradient is the exact derivative (`AttributionMethod.guidance_exact`)
        m.check(model, strict=False)  # a method that cannot run refuses; an inexact map warns
        self.exact = m.guidance_exact(model)
        if not self.exact:
            warnings.warn(m.inexact_guidance(model), UserWarning, stacklevel=2)

    def __repr__(self) -> str:
        return (f"Guide({type(self.model).__name__}, layer={self.layer!r}, method={self.method!r}, "
                f"loss={self.loss!r})")

    def maps(self, images: Tensor, targets: Tensor | Sequence[int], create_graph: bool = True
             ) -> tuple[Tensor, Tensor]:
        """(logits [N, K], maps [N, h, w] at the layer's resolution) from ONE forward pass; with
        `create_graph` the maps are differentiable w.r.t. the parameters. Target -1: no map (zeros)."""
        with torch.enable_grad(), attribution_context(self.model, self.method, strict=None):
            logits, act = self.tap.forward(images)
            maps = layer_maps(logits, act, targets, self.method, images.shape[-2:], create_graph,
                              self.tap.prefix_tokens, f"layer {self.layer!r}")
        self._check_maps(images, targets, maps)
        return logits, maps

    def _check_maps(self, images: Tensor, targets: Tensor | Sequence[int], maps: Tensor) -> None:
        """Warn (once per reason) when every attributed image's map is constant over the image; checked
        until a call's maps vary (one device synchronisation per checked call)."""
        key = (self.layer, self.method)
        settled = _SETTLED.setdefault(self.model, set())
        if key in settled:
            return
        t = as_targets(targets, maps.shape[0])
        problem = map_problem(self.model, self.layer, maps.detach(), t >= 0)
        if problem is None:
            settled.add(key)
            return
        if problem != ZERO_HEAD:
            settled.add(key)  # the layer itself: say it once
        elif problem in self._warned:
            return
        self._warned.add(problem)
        suggestion = None
        if problem != ZERO_HEAD:  # a zero head: every layer's map is zero, no layer to suggest
            try:
                suggestion = suggest_layer(self.model, images, t.to(images.device), self.layer, self.method,
                                           self.tap.prefix_tokens)
            except Exception:  # noqa: BLE001 - the suggestion is a courtesy; the warning goes out regardless
                suggestion = None
        warnings.warn(explain(problem, self.model, self.layer, self.method, suggestion), UserWarning, stacklevel=4)

    def __call__(self, images: Tensor, targets: Tensor | Sequence[int], masks: Tensor,
                 guided: Tensor | Sequence[bool] | None = None) -> tuple[Tensor, Tensor]:
        """(logits [N, K], localisation loss per image [N]) from ONE forward pass.

        targets: one class per image [N] (-1: no localisation loss for that image, e.g. no box);
        masks: [N, H, W] in [0, 1], 1 where the target class's evidence should be (soft values weight
        pixels). Both outputs are in the graph:
        call ``backward`` on your total loss outside any explanation context (this returns outside it).
        guided: optional [N] bool, which images the loss counts (default: every image with a target).
        Images with a target but not guided are still attributed (in train-mode batch norm their
        target logits shape the other images' maps): the paper's step attributes one class of every
        image and guides only those whose class has a box (limited annotations, Sec. 5.3). Their loss
        is 0 and their masks are never read.
        """
        if not torch.is_tensor(masks) or masks.dim() != 3:
            raise ValueError(
                f"masks must be a tensor [N, H, W] (1 inside the target class's boxes; "
                f"rightfocus.data.boxes_to_masks builds them), got {getattr(masks, 'shape', type(masks).__name__)}"
            )
        if masks.device.type == "cpu" and masks.numel() and (float(masks.min()) < 0 or float(masks.max()) > 1):
            # checked on the host only (on a device it would cost a synchronisation per step)
            raise ValueError(f"masks must lie in [0, 1] (binary, or soft weights), got values in "
                             f"[{float(masks.min()):g}, {float(masks.max()):g}]; rescale them")
        n = images.shape[0] if torch.is_tensor(images) else -1
        t = torch.as_tensor(targets)
        if t.dim() > 1 or t.is_floating_point():
            as_targets(t, n)  # raises: one class index per image
        if not n == t.numel() == masks.shape[0]:
            raise ValueError(
                f"batch sizes differ: {n} images, {t.numel()} targets, {masks.shape[0]} masks; pass one target "
                "(class index) and one mask [H, W] per image"
            )
        if tuple(masks.shape[-2:]) != tuple(images.shape[-2:]):
            raise ValueError(
                f"masks are {tuple(masks.shape[-2:])} but the images are {tuple(images.shape[-2:])} (H, W); build the "
                "masks at the images' size, after any resize or crop: rightfocus.data.boxes_to_masks(boxes, targets, "
                "images.shape[-2:]) with boxes in the resized images' pixels"
            )
        first = (self.layer, self.method) not in _SETTLED.get(self.model, ())
        logits, maps = self.maps(images, targets, create_graph=True)
        if maps.dtype in (torch.bfloat16, torch.float16):
            maps = maps.float()  # losses in fp32 under autocast (fp32 / fp64 maps stay as they are)
        valid = as_targets(targets, n) >= 0  # where the targets are (host: no device synchronisation)
        if guided is not None:
            use = torch.as_tensor(guided, device=valid.device)
            if use.dtype != torch.bool or use.shape != (n,):
                raise ValueError(f"guided must be a bool tensor [N={n}] (which images the loss counts), got "
                                 f"dtype {use.dtype} shape {tuple(use.shape)}")
            valid = valid & use
        if masks.device.type == "cpu" or first:
            _warn_empty_masks(masks, valid)  # host masks: free; device masks: first calls only (one sync)
        masks = masks.to(device=maps.device, dtype=maps.dtype)
        if bool(valid.all()):
            return logits, self._loss(maps, masks)
        loc = maps.new_zeros(n)
        if bool(valid.any()):
            keep = valid.nonzero().flatten().to(maps.device, non_blocking=True)
            loc = loc.index_put((keep,), self._loss(maps[keep], masks[keep]))
        return logits, loc

    @torch.no_grad()
    def attribute(self, images: Tensor, targets: Tensor | Sequence[int], upsample: bool = True) -> Tensor:
        """Maps [N, H, W] (bilinearly upsampled to the input size; `upsample=False`: the layer's own
        resolution), detached, for plots and metrics (`rightfocus.metrics.epg`, `iou`). Call
        ``model.eval()`` first for batch-independent maps."""
        _, maps = self.maps(images, targets, create_graph=False)
        maps = maps.detach()
        return upsample_maps(maps, images.shape[-2:]) if upsample else maps


def _warn_empty_masks(masks: Tensor, valid: Tensor) -> None:
    """Warn when a guided image's mask is all zero (the energy loss would push all of its attribution
    off the image, the other losses towards zero everywhere)."""
    empty = (masks.flatten(1).amax(1) <= 0).to(valid.device) & valid
    if bool(empty.any()):
        idx = empty.nonzero().flatten().tolist()
        warnings.warn(
            f"the masks of image(s) {idx[:10]}{' ...' if len(idx) > 10 else ''} are all zero, so their localisation "
            "loss pushes attribution off the whole image; give such images target -1 or guided=False (no box: no "
            "loss), or check the boxes (rightfocus.data.boxes_to_masks wants [class, x1, y1, x2, y2] rows in pixels)",
            UserWarning, stacklevel=3)
