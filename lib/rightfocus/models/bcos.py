"""The ``bcos`` model kind: B-cos ResNet / DenseNet / ViT-C (B-cos v2; Rao et al. 2023, Sec. 4).

Inputs are 6-channel ``[r, g, b, 1-r, 1-g, 1-b]`` (``input_encoding = "bcos"``). Architectures:
resnet18, resnet50, densenet121, vit_s (B-cos-v2's vitc_s_patch1_14), each computing exactly what
B-cos-v2's own definition (the ``bcos`` package) computes, so its release checkpoints load unchanged
(`release.RELEASES`); and small test/demo versions of the same design: tiny (ResNet), tiny_densenet
(B-cos-v2's ``small_inputs`` variants at small widths), tiny_vit. Every size option of the full
architectures can be overridden by keyword.
"""

from __future__ import annotations

from typing import Callable

from .bcos_densenet import bcos_densenet
from .bcos_resnet import bcos_resnet
from .bcos_vit import bcos_vit
from .taps import TappedModel

ARCHS: dict[str, Callable[..., TappedModel]] = {
    "resnet18": bcos_resnet,
    "resnet50": bcos_resnet,
    "tiny": bcos_resnet,
    "densenet121": bcos_densenet,
    "tiny_densenet": bcos_densenet,
    "vit_s": bcos_vit,
    "tiny_vit": bcos_vit,
}


def build(arch: str, num_classes: int, **options) -> TappedModel:
    """A B-cos classifier; see `ARCHS`."""
    if arch not in ARCHS:
        raise ValueError(f"unknown B-cos arch {arch!r}; choose from {sorted(ARCHS)}")
    return ARCHS[arch](arch, num_classes, **options)
