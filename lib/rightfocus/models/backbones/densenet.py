"""DenseNet-121 (Rao et al. 2023, Sec. 5.3). Cut: mid1 = stem + denseblock1 (stages 0, 1); each
transition folded into the START of the next stage so the cuts match ResNet's: mid2 = transition1 +
denseblock2, mid3 = transition2 + denseblock3, final = transition3 + denseblock4 + norm5 + ReLU
(torchvision applies that ReLU in forward(); it belongs to the final tap)."""

from __future__ import annotations

from typing import Any

from rightfocus.models.backbones.base import Backbone, Cut, register_backbone


def cut_densenet(net: Any) -> Cut:
    from torch import nn

    f = net.features
    return {"mid1": {0: [f.conv0, f.norm0, f.relu0, f.pool0], 1: f.denseblock1},
            "mid2": {2: [f.transition1, f.denseblock2]}, "mid3": {3: [f.transition2, f.denseblock3]},
            "final": {4: [f.transition3, f.denseblock4, f.norm5, nn.ReLU()]}}


register_backbone(Backbone("densenet121", "DenseNet-121", "densenet", "torchvision.models:densenet121", cut_densenet,
                           classifier="classifier", pretrained={"bcos": "densenet_121-b8daf96afb.pth"},
                           resolution=224))
