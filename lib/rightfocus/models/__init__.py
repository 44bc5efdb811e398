"""Classifiers with named taps: vanilla torchvision, X-DNN (bias-free) and B-cos models.

Public: `build_model(kind, arch, num_classes, weights=None, **options)`, `TAPS`, `TappedModel`,
`explanation_mode`, `count_parameters`, and the registry (`MODEL_KINDS`, `register_kind`).
To add a model family, define ``build(arch, num_classes, **options) -> TappedModel`` and call
``register_kind("<kind>", build)``; AIM's module (models/aim.py) does this when imported below.
"""

from importlib.util import find_spec

from . import bcos, vanilla, xdnn
from .bcos_layers import explanation_mode
from .registry import MODEL_KINDS, build_model, count_parameters, register_kind
from .taps import TAPS, TappedModel
from .weights import load_weights

register_kind("vanilla", vanilla.build)
register_kind("xdnn", xdnn.build)
register_kind("bcos", bcos.build)

# AIM (models/aim.py, another module) registers kind "aim" itself on import.
if find_spec(f"{__name__}.aim") is not None:
    from . import aim  # noqa: F401

__all__ = [
    "MODEL_KINDS",
    "TAPS",
    "TappedModel",
    "build_model",
    "count_parameters",
    "explanation_mode",
    "load_weights",
    "register_kind",
]
