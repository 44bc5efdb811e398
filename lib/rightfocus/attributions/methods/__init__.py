"""Attribution methods as registered objects (one file per method; `base.AttributionMethod`).

Built in, in this order: ``ixg``, ``intgrad``, ``gradcam``, ``bcos`` (single pass, differentiable:
training and `rightfocus.Guide`), ``guided_backprop``, ``guided_gradcam`` (evaluation only). A new
method is one module with a subclass decorated by `register_method`; import it (or name it in
``RIGHTFOCUS_PLUGINS``) and every consumer sees it.
"""

from rightfocus.attributions.methods.base import (
    ANY_TAP, ATTRIBUTION_METHODS, GUIDE_METHODS, INPUT_ONLY, METHODS, NEEDS_LAYER, TAP_METHODS, AttributionMethod,
    attribution_context, evaluation_methods, get_method, native_kinds, native_method, register_method,
)
from rightfocus.attributions.methods import ixg, intgrad, gradcam, bcos, guided_backprop, guided_gradcam  # noqa: F401,E401  (registration order)
from rightfocus.attributions.methods.bcos import bcos_mode
from rightfocus.attributions.methods.intgrad import is_bias_free

__all__ = [
    "ANY_TAP", "ATTRIBUTION_METHODS", "AttributionMethod", "GUIDE_METHODS", "INPUT_ONLY", "METHODS", "NEEDS_LAYER",
    "TAP_METHODS", "attribution_context", "bcos_mode", "evaluation_methods", "get_method", "is_bias_free",
    "native_kinds", "native_method", "register_method",
]
