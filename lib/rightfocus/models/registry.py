"""`build_model`: the one public way to make a classifier; it reads `MODEL_KINDS` (models/kinds.py).

A builder is ``builder(arch: str, num_classes: int, **options) -> TappedModel``; `build_model` then
loads weights (a local file) uniformly for every kind, so builders never touch files. A new family is
``register_kind("name", builder)``, or a `ModelKind` with its metadata registered in `MODEL_KINDS`.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from rightfocus.dotted import dotted_name

from .kinds import MODEL_KINDS, ModelKind
from .taps import TappedModel
from .weights import load_weights

ModelBuilder = Callable[..., TappedModel]


def register_kind(kind: str, builder: ModelBuilder, **metadata: Any) -> ModelKind:
    """Register `builder` under `kind` (`metadata`: the other `ModelKind` fields, e.g. ``label``,
    ``input_encoding``, ``native_method``). Registering the same builder again is allowed."""
    existing = MODEL_KINDS.get(kind)
    if existing is not None:
        if dotted_name(existing.builder) != dotted_name(builder):
            raise ValueError(f"model kind {kind!r} is already registered ({existing.builder!r}); pick another name")
        return existing
    entry = ModelKind(kind, metadata.pop("label", kind), builder, **metadata)
    MODEL_KINDS.register(kind, entry)
    return entry


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
    model = MODEL_KINDS[kind].build(arch, num_classes, **options)
    if weights is not None:
        model.weights_report = load_weights(model, weights)
    return model


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once), as in AIM Table 6."""
    params = model.parameters()
    return sum(p.numel() for p in params if p.requires_grad or not trainable_only)
