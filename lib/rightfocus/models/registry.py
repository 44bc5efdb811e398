"""Model registry: kind -> builder. `build_model` is the one public way to make a classifier.

A builder is ``builder(arch: str, num_classes: int, **options) -> TappedModel``; `build_model` then
loads weights (a local file) uniformly for every kind, so builders never touch files. Adding a model
family is one line: ``register_kind("aim", build_aim)`` (models/aim.py does this on import).
"""

from __future__ import annotations

import os
from typing import Callable

from .taps import TappedModel
from .weights import load_weights

ModelBuilder = Callable[..., TappedModel]

#: kind -> builder; extend with `register_kind`.
MODEL_KINDS: dict[str, ModelBuilder] = {}


def register_kind(kind: str, builder: ModelBuilder) -> None:
    """Register `builder` under `kind` (re-registering the same builder is allowed)."""
    existing = MODEL_KINDS.get(kind)
    if existing is not None and existing is not builder:
        raise ValueError(f"model kind {kind!r} is already registered ({existing!r}); pick another name")
    MODEL_KINDS[kind] = builder


def build_model(
    kind: str,
    arch: str,
    num_classes: int,
    weights: str | os.PathLike | None = None,
    **options,
) -> TappedModel:
    """Build a classifier of family `kind` ("vanilla", "xdnn", "bcos", "aim") and architecture `arch`.

    `weights` is a local file (absolute, or relative to $WEIGHTS_ROOT), e.g. a release checkpoint
    under its own name (`release.RELEASES`; see `weights.load_weights`). Head replacement: when the
    file's head has another class count (the 1000-class ImageNet releases vs a K-class run), the
    head keeps its fresh initialisation and everything else loads; the `weights.LoadReport` is kept
    as ``model.weights_report`` (``head_kept_fresh`` lists the replaced keys).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; registered kinds: {sorted(MODEL_KINDS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    model = MODEL_KINDS[kind](arch, num_classes, **options)
    if weights is not None:
        model.weights_report = load_weights(model, weights)
    return model


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once), as in AIM Table 6."""
    params = model.parameters()
    return sum(p.numel() for p in params if p.requires_grad or not trainable_only)
