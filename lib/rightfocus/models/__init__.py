"""Classifiers with named taps: vanilla torchvision, X-DNN (bias-free), B-cos and AIM models.

Public: `build_model(kind, arch, num_classes, weights=None, **options)`, `TAPS`, `TappedModel`,
`explanation_mode`, `count_parameters`, `load_weights`, and the registries `MODEL_KINDS` (`ModelKind`,
`register_kind`) and `BACKBONES` (`Backbone`). The registries import no torch; the other names are
imported on first use, so ``from rightfocus.models.kinds import MODEL_KINDS`` stays light.
"""

from __future__ import annotations

from rightfocus.dotted import lazy_getattr

from .backbones import BACKBONES, Backbone
from .kinds import MODEL_KINDS, ModelKind

#: public name -> the submodule that defines it (imported on first use)
_LAZY = {
    "TAPS": "taps", "TappedModel": "taps", "build_model": "registry", "count_parameters": "registry",
    "register_kind": "registry", "explanation_mode": "bcos_layers", "load_weights": "weights",
}

__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = [
    "BACKBONES",
    "Backbone",
    "MODEL_KINDS",
    "ModelKind",
    "TAPS",
    "TappedModel",
    "build_model",
    "count_parameters",
    "explanation_mode",
    "load_weights",
    "register_kind",
]
