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
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import Tensor, nn

from rightfocus.attributions import TAP_METHODS, upsample_maps
from rightfocus.attributions.layer import (
    INPUT, LayerTap, as_targets, bcos_mode, layer_maps, method_context, warn_if_not_exact,
)
from rightfocus.losses import LOSSES

#: attribution methods a `Guide` can train through
GUIDE_METHODS: tuple[str, ...] = TAP_METHODS


class Guide:
    """Differentiable attributions and localisation losses for any classifier, from ONE forward pass.

    Parameters
    ----------
    model : any ``nn.Module`` whose forward maps images [N, C, H, W] to logits [N, K] (a rightfocus
        `TappedModel` too; its tap names ``mid1`` .. ``final`` are accepted as layers). Images must be
        encoded the way the model expects (e.g. ImageNet-normalised).
    layer : ``"input"`` or a name from ``model.named_modules()`` (e.g. ``"layer4"``, ``"features"``,
        ``"blocks.5"``). Its output must be [N, C, h, w] or ViT tokens [N, L, D].
    method : ixg | gradcam | intgrad | bcos (see the module docstring).
    loss : energy | l1 | ppce | rrr.
    prefix_tokens : ViT layers only: class / register tokens before the patch tokens (default: timm's
        ``num_prefix_tokens``, 1 for torchvision's ViT, else inferred from the token count).

    The model's train / eval mode is left as it is (batch norm in train mode mixes the images of a
    batch, as in the paper's training). The model is not modified: a forward hook lives only during a
    call.
    """

    def __init__(self, model: nn.Module, layer: str = INPUT, method: str = "ixg", loss: str = "energy",
                 *, prefix_tokens: int | None = None) -> None:
        if method not in GUIDE_METHODS:
            raise ValueError(f"unknown attribution method {method!r}; choose one of {list(GUIDE_METHODS)}")
        if loss not in LOSSES:
            raise ValueError(f"unknown localisation loss {loss!r}; choose one of {list(LOSSES)}")
        self.tap = LayerTap(model, layer, prefix_tokens)
        self.model, self.layer, self.method, self.loss = model, layer, method, loss
        #: whether the guidance gradient is the exact derivative (False: bcos-package explanation mode)
        self.exact = bcos_mode(model)[1] if method == "bcos" else True
        if not self.exact:
            warnings.warn(
                f"{type(model).__name__}'s explanation mode detaches the B-cos scales in the forward pass (the "
                "bcos package does): the maps are exact B-cos explanations, but every gradient through "
                "Guide's forward (the classification loss's too) treats the scales as constants. For exact "
                "guidance use rightfocus's B-cos models (rightfocus.models.build_model('bcos', ...)), which "
                "load the B-cos-v2 release files",
                UserWarning,
                stacklevel=2,
            )
        warn_if_not_exact(model, method)

    def __repr__(self) -> str:
        return (f"Guide({type(self.model).__name__}, layer={self.layer!r}, method={self.method!r}, "
                f"loss={self.loss!r})")

    def maps(self, images: Tensor, targets: Tensor | Sequence[int], create_graph: bool = True
             ) -> tuple[Tensor, Tensor]:
        """(logits [N, K], maps [N, h, w] at the layer's resolution) from ONE forward pass; with
        `create_graph` the maps are differentiable w.r.t. the parameters. Target -1: no map (zeros)."""
        with torch.enable_grad(), method_context(self.model, self.method):
            logits, act = self.tap.forward(images)
            maps = layer_maps(logits, act, targets, self.method, images.shape[-2:], create_graph,
                              self.tap.prefix_tokens, f"layer {self.layer!r}")
        return logits, maps

    def __call__(self, images: Tensor, targets: Tensor | Sequence[int], masks: Tensor,
                 guided: Tensor | Sequence[bool] | None = None) -> tuple[Tensor, Tensor]:
        """(logits [N, K], localisation loss per image [N]) from ONE forward pass.

        targets: one class per image [N] (-1: no localisation loss for that image, e.g. no box);
        masks: [N, H, W] in [0, 1], 1 where the target class's evidence should be (soft values weight pixels). Both outputs are in the graph:
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
        masks = masks.to(device=maps.device, dtype=maps.dtype)
        if bool(valid.all()):
            return logits, LOSSES[self.loss](maps, masks)
        loc = maps.new_zeros(n)
        if bool(valid.any()):
            keep = valid.nonzero().flatten().to(maps.device, non_blocking=True)
            loc = loc.index_put((keep,), LOSSES[self.loss](maps[keep], masks[keep]))
        return logits, loc

    @torch.no_grad()
    def attribute(self, images: Tensor, targets: Tensor | Sequence[int], upsample: bool = True) -> Tensor:
        """Maps [N, H, W] (bilinearly upsampled to the input size; `upsample=False`: the layer's own
        resolution), detached, for plots and metrics (`rightfocus.metrics.epg`, `iou`). Call
        ``model.eval()`` first for batch-independent maps."""
        _, maps = self.maps(images, targets, create_graph=False)
        maps = maps.detach()
        return upsample_maps(maps, images.shape[-2:]) if upsample else maps
