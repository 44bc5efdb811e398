"""ResNet backbones: torchvision's ResNet-18/50/101 (Rao et al. 2023, Sec. 4; AIM, Sec. 4) and the
small ``tiny`` net of the demo (`small.TinyResNetLayout`). Cut: mid1 = stem + layer1 (stages 0, 1),
mid2 .. final = layer2 .. layer4 (stages 2 .. 4)."""

from __future__ import annotations

from typing import Any

from rightfocus.models.backbones.base import Backbone, Cut, register_backbone


def cut_resnet(net: Any) -> Cut:
    return {"mid1": {0: [net.conv1, net.bn1, net.relu, net.maxpool], 1: net.layer1},
            "mid2": {2: net.layer2}, "mid3": {3: net.layer3}, "final": {4: net.layer4}}


#: the torchvision ImageNet release the vanilla kind and AIM start from, and X-DNN's / B-cos' own
_RESNET50 = {"vanilla": "resnet50-0676ba61.pth", "xdnn": "xfixup_resnet50_model_best.pth.tar",
             "bcos": "resnet_50-f46c1a4159.pth", "aim": "resnet50-0676ba61.pth"}

register_backbone(Backbone("resnet18", "ResNet-18", "resnet", "torchvision.models:resnet18", cut_resnet, resolution=224))
register_backbone(Backbone("resnet50", "ResNet-50", "resnet", "torchvision.models:resnet50", cut_resnet,
                           pretrained=_RESNET50, resolution=224))
register_backbone(Backbone("resnet101", "ResNet-101", "resnet", "torchvision.models:resnet101", cut_resnet,
                           pretrained={"aim": "resnet101-63fe2227.pth"}, resolution=224))
register_backbone(Backbone("tiny", "tiny ResNet", "resnet", "rightfocus.models.backbones.small:TinyResNetLayout", cut_resnet,
                           resolution=32))
