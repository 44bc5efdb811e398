"""Loading weights from local files only (no network): torchvision, B-cos-v2 and X-DNN state dicts.

Each model built here carries ``source_key_map`` (key in the upstream layout -> our key), computed by
tensor identity from the upstream-shaped module tree the model was assembled from, so a state dict in
the upstream layout (``layer1.0.conv1.weight``) and one saved from our model (``stages.mid1...``)
both load. Keys under ``head.`` whose shape differs (another class count) keep their fresh
initialisation: the classifier is replaced, as when fine-tuning ImageNet weights (Rao et al. 2023,
Sec. 4). Anything else that does not match is an error that lists the keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

WEIGHTS_ENV = "WEIGHTS_ROOT"
_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net")


@dataclass
class LoadReport:
    """What `load_weights` did: the file, how many tensors loaded, which head keys stayed fresh."""

    path: Path
    loaded: int
    head_kept_fresh: list[str] = field(default_factory=list)


def resolve_weights(weights: str | os.PathLike) -> Path:
    """The weights file: `weights` itself if it exists, else ``$WEIGHTS_ROOT/<weights>``."""
    path = Path(weights).expanduser()
    root = os.environ.get(WEIGHTS_ENV)
    candidates = [path] if path.is_absolute() or root is None else [path, Path(root) / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = f"${WEIGHTS_ENV} (now {root!r})" if root else f"${WEIGHTS_ENV} (not set)"
    raise FileNotFoundError(
        f"weights file {str(path)!r} not found (looked at {[str(c) for c in candidates]}). "
        f"Nothing is downloaded: put the file (e.g. the torchvision / B-cos-v2 / X-DNN release "
        f"checkpoint named {path.name!r}) under {where} or pass its absolute path."
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """A flat state dict from a checkpoint file (``torch.load(weights_only=True)``); unwraps common
    containers (``{"state_dict": ...}``) and DataParallel's ``module.`` prefix."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(obj, dict):
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def identity_key_map(source: nn.Module, target: nn.Module) -> dict[str, str]:
    """Map each state-dict key of `source` to the key of the same tensor object in `target`."""
    ours = {id(t): k for k, t in target.state_dict(keep_vars=True).items()}
    return {k: ours[id(t)] for k, t in source.state_dict(keep_vars=True).items() if id(t) in ours}


def load_weights(model: nn.Module, weights: str | os.PathLike) -> LoadReport:
    """Load a local checkpoint into `model` (in place); returns a `LoadReport`."""
    path = resolve_weights(weights)
    state = read_state_dict(path)
    key_map: dict[str, str] = getattr(model, "source_key_map", {})
    target = model.state_dict()
    accepted: dict[str, Tensor] = {}
    unexpected, mismatched, fresh, seen = [], [], [], set()
    for key, value in state.items():
        ours = key_map.get(key, key)
        seen.add(ours)
        if ours not in target:
            unexpected.append(key)
        elif target[ours].shape != value.shape and ours.startswith("head."):
            fresh.append(ours)  # another class count: the classifier is replaced
        elif target[ours].shape != value.shape:
            mismatched.append(f"{key}: file {tuple(value.shape)} vs model {tuple(target[ours].shape)}")
        else:
            accepted[ours] = value
    missing = [k for k in target if k not in seen]
    fresh += [k for k in missing if k.startswith("head.")]
    missing = [k for k in missing if not k.startswith("head.")]
    if unexpected or mismatched or missing:
        raise ValueError(
            f"{path} does not fit this {type(model).__name__}: unexpected keys {unexpected[:8]}"
            f"{'...' if len(unexpected) > 8 else ''}, shape mismatches {mismatched[:8]}, missing keys "
            f"{missing[:8]}{'...' if len(missing) > 8 else ''}. Check that kind/arch match the file."
        )
    model.load_state_dict(accepted, strict=False)
    return LoadReport(path=path, loaded=len(accepted), head_kept_fresh=sorted(fresh))
