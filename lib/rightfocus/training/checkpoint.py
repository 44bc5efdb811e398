"""The one checkpoint format and RNG state: what a run needs to resume exactly where it stopped.

Every checkpoint holds {model, num_classes, epoch, model_options}; `latest.pt` adds the task's
optimiser/scheduler state, every RNG state and the metrics rows so far (see `training.engine`), so an
interrupted run that resumes ends with the same metrics as one that never stopped (same device, seed).
Files are written atomically (temp + rename): a kill never leaves a truncated checkpoint.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rightfocus.experiments.store import atomic_torch_save


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Global torch / numpy / python RNG states plus the run's own generators."""
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "generators": {k: g.get_state() for k, g in generators.items()},
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
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
    # our own files: they hold RNG states (numpy arrays), so weights_only must be off
    return torch.load(path, map_location=device, weights_only=False)
