"""Loading weights from local files only (no network): the papers' release checkpoints as
downloaded (torchvision, B-cos-v2, model guidance's B-cos ResNet-50, X-DNN) and our own checkpoints.

Every file is read with ``torch.load(weights_only=True)``; a file that needs pickle is refused.
`read_state_dict` undoes the release wrappers: a container dict (``{"state_dict": ...}``, X-DNN's
``.pth.tar``), DataParallel's ``module.`` prefix, the ``0.`` prefix of a model saved inside a
sequential wrapper (B-cos-v2's ViTs, model guidance's B-cos ResNet-50), and torchvision's legacy
DenseNet key names (``denselayer1.norm.1.weight`` -> ``denselayer1.norm1.weight``, as torchvision's
own loader renames them).

Each model built here carries ``source_key_map`` (key in the upstream layout -> our key), computed by
tensor identity from the upstream-shaped module tree the model was assembled from, so a state dict in
the upstream layout (``layer1.0.conv1.weight``) and one saved from our model (``stages.mid1...``)
both load.

Head replacement (fine-tuning from ImageNet weights, Rao et al. 2023, Sec. 4): the release files
have 1000-class heads; when the model has another class count, the keys under ``head.`` whose shape
differs keep their fresh initialisation and are listed in `LoadReport.head_kept_fresh`; with 1000
classes the head loads too. A missing ``num_batches_tracked`` (files saved before torch 0.4.1, e.g.
torchvision's DenseNet-121) keeps the model's counter. Anything else that does not fit is an error
that lists every problem (`fit_problems`).
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

WEIGHTS_ENV = "WEIGHTS_ROOT"
_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net")
#: prefixes of wrapped models: DataParallel (per key) and a sequential wrapper (all keys)
_WRAPPER_PREFIXES = ("module.", "0.")
#: torchvision's pre-0.4 DenseNet keys: ``...denselayerN.norm.1.weight`` -> ``...denselayerN.norm1.weight``
_LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var)$"
)


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
        f"checkpoint named {path.name!r}, see docs/weights.md) under {where} or pass its "
        f"absolute path."
    )


def _strip_wrappers(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Remove DataParallel's ``module.`` (per key) and a sequential wrapper's ``0.`` (when every key
    has it), then rename torchvision's legacy DenseNet keys."""
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    if state and all(k.startswith("0.") for k in state):
        state = {k[2:]: v for k, v in state.items()}
    renamed = {}
    for key, value in state.items():
        legacy = _LEGACY_DENSENET_KEY.match(key)
        renamed[f"{legacy[1]}{legacy[2]}.{legacy[3]}" if legacy else key] = value
    return renamed


def _looks_like_a_checkpoint(path: str | os.PathLike) -> bool:
    """Whether the file starts like something torch.save writes: a zip archive (torch >= 1.6) or a
    pickle (protocol 2+ opens with 0x80; the legacy format too). Missing files pass (torch.load says so)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return True
    return head[:2] == b"PK" or head[:1] == b"\x80"


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """A flat state dict from a checkpoint file (``torch.load(weights_only=True)``), with the release
    wrappers undone (see the module docstring)."""
    if not _looks_like_a_checkpoint(path):
        raise ValueError(
            f"{path}: not a torch checkpoint (neither torch.save's zip format nor a pickle: a corrupt or partial "
            "download, or another kind of file); download the release file again")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: refused: the file needs pickle to load (torch.load(weights_only=True) failed: "
            f"{str(err).splitlines()[0]}). Only plain state dicts of tensors are read; re-save the "
            f"file with torch.save(model.state_dict(), ...)."
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from err
    while isinstance(obj, dict):
        inner = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        kinds = sorted({type(v).__name__ for v in obj.values()}) if isinstance(obj, dict) else []
        raise ValueError(
            f"{path}: expected a state dict of tensors (or a dict holding one under "
            f"{list(_CONTAINER_KEYS)}), got {type(obj).__name__}{f' of {kinds}' if kinds else ''}"
        )
    return _strip_wrappers(obj)


def identity_key_map(source: nn.Module, target: nn.Module) -> dict[str, str]:
    """Map each state-dict key of `source` to the key of the same tensor object in `target`."""
    ours = {id(t): k for k, t in target.state_dict(keep_vars=True).items()}
    return {k: ours[id(t)] for k, t in source.state_dict(keep_vars=True).items() if id(t) in ours}


def _listed(keys: list[str], limit: int = 8) -> str:
    return f"{len(keys)}: {keys[:limit]}{f' and {len(keys) - limit} more' if len(keys) > limit else ''}"


def match_state_dict(model: nn.Module, state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """Map `state` (upstream or own layout) onto `model`: ``(accepted, head_kept_fresh, problems)``;
    `problems` is empty when the file fits (see the module docstring for what is allowed)."""
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
    missing = [k for k in target if k not in seen and not k.endswith("num_batches_tracked")]
    fresh += [k for k in missing if k.startswith("head.")]
    upstream_name = {ours: up for up, ours in key_map.items()}  # name missing keys as the file would
    missing = [upstream_name.get(k, k) for k in missing if not k.startswith("head.")]
    problems = []
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches {_listed(mismatched)}")
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    return accepted, sorted(fresh), problems


def load_weights(model: nn.Module, weights: str | os.PathLike) -> LoadReport:
    """Load a local checkpoint into `model` (in place); returns a `LoadReport`.

    Raises ValueError listing every unexpected key, shape mismatch and missing key otherwise."""
    path = resolve_weights(weights)
    accepted, fresh, problems = match_state_dict(model, read_state_dict(path))
    if problems:
        raise ValueError(
            f"{path} does not fit this {type(model).__name__}: {'; '.join(problems)}. "
            f"Check that kind/arch match the file (docs/weights.md lists each release file's "
            f"kind and arch)."
        )
    model.load_state_dict(accepted, strict=False)
    return LoadReport(path=path, loaded=len(accepted), head_kept_fresh=fresh)
