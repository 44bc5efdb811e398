"""ConvNeXt backbones: torchvision's ConvNeXt-tiny (AIM, Alshami et al. 2025, Sec. 4) and a small one
of the same design for tests. Cut: the four stages, each downsampling layer folded into the start of
its stage (``features[0:2], [2:4], [4:6], [6:8]``) = AIM's S0..S3."""

from __future__ import annotations

from typing import Any

from rightfocus.models.backbones.base import Backbone, Cut, register_backbone


def cut_convnext(net: Any) -> Cut:
    f = net.features
    return {"mid1": {0: f[0:2]}, "mid2": {1: f[2:4]}, "mid3": {2: f[4:6]}, "final": {3: f[6:8]}}


def tiny_convnext(num_classes: int, stochastic_depth_prob: float = 0.0) -> Any:
    """ConvNeXt-shaped tiny net (torchvision's ConvNeXt class): widths 16-128, one block per stage."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    setting = [CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, 128, 1),
               CNBlockConfig(128, None, 1)]
    return ConvNeXt(setting, stochastic_depth_prob=stochastic_depth_prob, num_classes=num_classes)


_CONVNEXT = dict(cut=cut_convnext, classifier="classifier", classifier_input="map",
                 drop_path_option="stochastic_depth_prob")
register_backbone(Backbone("convnext_tiny", "ConvNeXt-tiny", "convnext", "torchvision.models:convnext_tiny", **_CONVNEXT,
                           pretrained={"aim": "convnext_tiny-983f1562.pth"}, resolution=224))
register_backbone(Backbone("tiny_convnext", "tiny ConvNeXt", "convnext", tiny_convnext, **_CONVNEXT, resolution=32))
