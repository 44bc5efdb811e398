"""Whether a layer's attribution maps can localise anything, and a layer that can.

A localisation loss (Rao et al. 2023, Eq. (1)) only moves maps that vary over the image. Three
set-ups give maps that cannot:

- a 1x1 layer (``avgpool`` of a ResNet, a pooled feature vector): one value per image, constant over
  the image after upsampling;
- a ViT's last block (or its final norm): the model reads only the class token after it
  (torchvision's ``x[:, 0]``, timm's ``global_pool="token"``), so the logits' gradient at every patch
  token is exactly zero, and so is every patch's attribution;
- a classifier head at zero (torchvision's ``VisionTransformer`` initialises ``heads.head`` to zero):
  the logits do not depend on anything, every map is zero until the classification loss has trained
  the head.

`map_problem` names which one a batch of maps shows; `suggest_layer` finds a layer whose maps vary
(for ViTs with a class token: the second-to-last block).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
from torch import Tensor, nn

from rightfocus.attributions.layer import spatial, token_grid
from rightfocus.attributions.methods import attribution_context
from rightfocus.models.taps import TappedModel

FLAT, PREFIX_ONLY, ZERO_HEAD, CONSTANT = "flat", "prefix-only", "zero-head", "constant"


def vit_blocks(model: nn.Module) -> list[str] | None:
    """Names of the transformer blocks of a torchvision or timm ViT that classifies from its class
    token (the last block's patch tokens never reach the logits); None for any other model."""
    encoder = getattr(model, "encoder", None)
    if getattr(model, "class_token", None) is not None and isinstance(getattr(encoder, "layers", None), nn.Sequential):
        return [f"encoder.layers.{n}" for n, _ in encoder.layers.named_children()]  # torchvision
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, (nn.Sequential, nn.ModuleList)) and getattr(model, "global_pool", None) == "token":
        return [f"blocks.{n}" for n, _ in blocks.named_children()]  # timm
    return None


def vit_layer(model: nn.Module) -> str | None:
    """The ViT layer to guide at: the second-to-last block (its patch tokens reach the class token
    through the last block's attention); None when `model` is not such a ViT."""
    blocks = vit_blocks(model)
    return blocks[-2] if blocks and len(blocks) > 1 else None


def _after_last_block(model: nn.Module, layer: str) -> bool:
    """Whether `layer` is the last block of a class-token ViT or a module after it (final norm)."""
    blocks = vit_blocks(model)
    if not blocks:
        return False
    names = [n for n, _ in model.named_modules()]
    last = blocks[-1]
    if layer == last or layer.startswith(last + "."):
        return True
    order = {n: i for i, n in enumerate(names)}
    head_like = ("heads", "head", "fc", "classifier")
    return layer in order and order[layer] > order[last] and not layer.split(".")[0] in head_like


def _grid_positions(t: Tensor, image_size: Sequence[int], prefix_tokens: int | None) -> int:
    """Spatial positions of an activation ([N, C, h, w] or ViT tokens); 0 when it has none."""
    if t.dim() == 4:
        return int(t.shape[2] * t.shape[3])
    if t.dim() == 3:
        try:
            _, h, w = token_grid(t.shape[1], image_size, prefix_tokens)
        except ValueError:
            return 0
        return h * w
    return 0


def suggest_layer(model: nn.Module, images: Tensor, targets: Tensor, layer: str, method: str = "ixg",
                  prefix_tokens: int | None = None) -> str | None:
    """A layer before `layer` whose attribution varies over the image, or None.

    Class-token ViTs: the second-to-last block. Otherwise one forward pass with every module hooked:
    among the modules that run once and output a spatial map (more than one position) before `layer`,
    the last one at which the target logits' gradient is non-zero at some position, preferring
    top-level modules and the entries of ``nn.Sequential`` / ``nn.ModuleList`` / ``nn.ModuleDict``
    containers (blocks) over their insides (rightfocus models: the tap name); by output shape alone when every gradient is zero (a zero head)."""
    vit = vit_layer(model)
    if vit is not None:
        return vit if vit != layer else None
    modules = dict(model.named_modules())
    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    blocks = {f"{p}.{c}" if p else c for p, m in modules.items() if isinstance(m, containers) or not p
              for c, _ in m.named_children()}
    outputs: list[tuple[str, Tensor]] = []
    runs: Counter[str] = Counter()

    def hook_for(name: str):
        def hook(module: nn.Module, args: tuple, output: object) -> object:
            runs[name] += 1
            if torch.is_tensor(output) and output.requires_grad:
                outputs.append((name, output))
                return output.clone()  # later in-place ops leave the recorded output intact
            return None
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in modules.items() if n]
    size = images.shape[-2:]
    try:
        with torch.enable_grad(), attribution_context(model, method, strict=None):
            logits = model(images.detach().requires_grad_(True))
            stop = next((i for i, (n, _) in enumerate(outputs) if n == layer), len(outputs))
            cands = [(n, o) for n, o in outputs[:stop]
                     if runs[n] == 1 and not n.startswith(layer + ".") and _grid_positions(o, size, prefix_tokens) > 1]
            if not cands:
                return None
            t = targets.clamp_min(0).to(logits.device)
            picked = logits.gather(1, t[:, None]).sum()
            grads = torch.autograd.grad(picked, [o for _, o in cands], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    varying = [n for (n, o), g in zip(cands, grads)
               if g is not None and bool(spatial(g, size, prefix_tokens).ne(0).any())]
    pool = varying or [n for n, _ in cands]  # every gradient zero: by shape alone
    preferred = [n for n in pool if n in blocks]
    best = (preferred or pool)[-1]
    if isinstance(model, TappedModel) and best.startswith("stages.") and best[len("stages."):] in model.taps:
        return best[len("stages."):]  # a rightfocus model: its tap name (mid1 .. final)
    return best


def map_problem(model: nn.Module, layer: str, maps: Tensor, valid: Tensor) -> str | None:
    """Which problem a batch of maps [N, h, w] shows (`FLAT`, `PREFIX_ONLY`, `ZERO_HEAD`,
    `CONSTANT`), or None when some attributed image's map varies. `valid`: [N] bool, the images
    with a target. Costs one device synchronisation."""
    if maps.shape[-1] * maps.shape[-2] == 1:
        return FLAT
    if not bool(valid.any()):
        return None
    flat = maps[valid.to(maps.device)].flatten(1)
    if bool((flat.amax(1) > flat.amin(1)).any()):
        return None
    if _after_last_block(model, layer):
        return PREFIX_ONLY
    if _zero_head(model) is not None:
        return ZERO_HEAD
    return CONSTANT


def explain(problem: str, model: nn.Module, layer: str, method: str, suggestion: str | None) -> str:
    """The warning for `problem` at `layer`: what the maps are, why, and what to do."""
    name = type(model).__name__
    use = f"guide at {suggestion!r}" if suggestion else "guide at an earlier layer with spatial positions"
    if problem == FLAT:
        return (f"layer {layer!r} of {name} has one spatial position (1x1), so every attribution map is constant over "
                f"the image and the localisation loss cannot localise anything; {use}")
    if problem == PREFIX_ONLY:
        return (f"every attribution map at layer {layer!r} of {name} is exactly zero: after the last transformer "
                "block the model reads only the class token, so no patch token reaches the logits (the localisation "
                f"loss stays at its maximum and gives no gradient); {use} (for a ViT: the second-to-last block)")
    if problem == ZERO_HEAD:
        head = _zero_head(model)
        why = (f"its classifier {head!r} is all zeros (torchvision's VisionTransformer initialises its head to zero)"
               if head else "the target logits do not change with this layer's output")
        return (f"every attribution map at layer {layer!r} of {name} is exactly zero because {why}: the localisation "
                "loss gives no gradient until the classification loss has trained the head (train it first, or "
                "start from trained weights)")
    return (f"every attribution map at layer {layer!r} of {name} ({method!r}) is constant over the image, so the "
            f"localisation loss gives no gradient; {use}, or another method")


def _zero_head(model: nn.Module) -> str | None:
    """The name of the model's last linear layer when its weights are all zero."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears and not bool(linears[-1][1].weight.detach().ne(0).any()):
        return linears[-1][0]
    return None
