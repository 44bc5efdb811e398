"""The one checkpoint format and RNG state: what a run needs to resume exactly where it stopped.

Every checkpoint holds {model, num_classes, epoch, model_options}; `latest.pt` adds the task's
optimiser/scheduler state, every RNG state and the metrics rows so far (see `training.engine`), so an
interrupted run that resumes ends with the same metrics as one that never stopped (same device, seed).
Files are written atomically (temp + rename): a kill never leaves a truncated checkpoint. A file holds
tensors and plain python data only (RNG states as tensors and ints), so it is read with
``torch.load(weights_only=True)`` (`store.load_torch`): opening a shared results folder never runs pickle.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rightfocus.runs.store import atomic_torch_save, load_torch


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Global torch / numpy / python RNG states plus the run's own generators, as tensors and plain
    data (numpy's Mersenne key as an int64 tensor; python's state as a list of ints)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(name), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "internal": [int(v) for v in internal], "gauss_next": gauss_next},
        "generators": {k: g.get_state() for k, g in generators.items()},
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    for k, g in generators.items():
        g.set_state(state["generators"][k])


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python RNGs (model init, augmentation)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def save_weights(path: Path, model: torch.nn.Module, num_classes: int, epoch: int,
                 model_options: dict[str, Any] | None = None, **more: Any) -> None:
    """A checkpoint: weights, class count, epoch and the options that rebuild the model (what
    `store.load_checkpoint` reads), plus `more` (``latest.pt``: resume state)."""
    atomic_torch_save({"model": model.state_dict(), "num_classes": num_classes, "epoch": epoch,
                       "model_options": dict(model_options or {}), **more}, path)


def load(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint of ours (`store.load_torch`: ``weights_only=True``; pickle is refused)."""
    return load_torch(path, device)
