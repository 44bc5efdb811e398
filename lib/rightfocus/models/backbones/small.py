"""The small ResNet of tests and the demo (the ``tiny`` backbone), in torchvision's ResNet layout."""

from __future__ import annotations

from typing import Sequence

from torch import nn
from torchvision.models.resnet import BasicBlock


class TinyResNetLayout(nn.Module):
    """ResNet-shaped, BasicBlocks, width 16 (16/32/64/128 channels), one block per stage, 3x3 stride-1
    stem without max-pool, for 32-64 px demo inputs; torchvision's attribute names, so its state dict
    reads the same."""

    def __init__(self, num_classes: int, width: int = 16, layers: Sequence[int] = (1, 1, 1, 1), in_chans: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        inplanes = width
        for i, n in enumerate(layers):
            planes, stride, blocks = width * 2**i, (2 if i else 1), []
            for j in range(n):
                down = None
                if j == 0 and (stride != 1 or inplanes != planes):
                    down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
                blocks.append(BasicBlock(inplanes, planes, stride if j == 0 else 1, down))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
