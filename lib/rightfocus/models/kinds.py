"""Model kinds (classifier families) with their metadata: `MODEL_KINDS`, a `Registry` of `ModelKind`.

Every place that offers or describes a kind reads this registry: `build_model` (the builder), the run
configuration (the allowed ``model_kind`` values), the native attribution method per kind (Rao et al.
2023, Sec. 3.2: Vanilla - input x gradient, X-DNN - IntGrad, B-cos - the B-cos explanation), the
figures (labels, the model-guidance columns) and `rightfocus check`. The module imports no torch:
built-in builders are named as ``"module:function"`` and imported on the first build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rightfocus.dotted import resolve
from rightfocus.registry import Registry


@dataclass(frozen=True)
class ModelKind:
    """One classifier family: ``builder(arch, num_classes, **options) -> TappedModel``.

    `native_method`: the attribution method the family is guided with in model guidance (None: the
    kind is not one of model guidance's families). `bias_free`: no additive term anywhere, so the
    network is positively homogeneous and IntGrad with a zero baseline is input x gradient exactly.
    """

    name: str
    label: str
    builder: Callable[..., Any] | str
    input_encoding: str = "imagenet"  # "imagenet" (mean/std) | "bcos" (6 channels [rgb, 1 - rgb])
    native_method: str | None = None
    bias_free: bool = False

    def build(self, arch: str, num_classes: int, **options: Any) -> Any:
        """The kind's classifier of architecture `arch` (see `rightfocus.models.build_model`)."""
        return resolve(self.builder)(arch, num_classes, **options)

    __call__ = build  # ``MODEL_KINDS[kind](arch, num_classes)`` builds, as a plain builder would


MODEL_KINDS: Registry[ModelKind] = Registry(
    "model kind", "call rightfocus.models.register_kind('name', builder) (see docs/extending.md)")

for _kind in (
    ModelKind("vanilla", "Vanilla", "rightfocus.models.vanilla:build", native_method="ixg"),
    ModelKind("xdnn", "X-DNN", "rightfocus.models.xdnn:build", native_method="intgrad", bias_free=True),
    ModelKind("bcos", "B-cos", "rightfocus.models.bcos:build", input_encoding="bcos", native_method="bcos"),
    ModelKind("aim", "AIM", "rightfocus.models.aim:build_aim"),
):
    MODEL_KINDS.register(_kind.name, _kind)


def native_methods() -> dict[str, str]:
    """Kind -> its native attribution method, for the kinds that have one, in registration order."""
    return {k.name: k.native_method for k in MODEL_KINDS.values() if k.native_method}
