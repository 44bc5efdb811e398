"""`Backbone`: one architecture with everything the code needs to know about it, registered in
`BACKBONES` (timm-style: each family's file registers its entries). Imports no torch.

A backbone's stage cut is written once, as ``cut(net) -> {tap: {stage number: module or list of
modules}}`` over the torchvision-layout network; the vanilla kind (models/vanilla.py: one module per
tap, `flat_stages`) and AIM (models/aim_backbones.py: numbered stages, `numbered_stages`) both build
from it. Stage numbers are AIM's (Alshami et al. 2025 do not number them; this choice): ResNet stem =
0, layer i = i; ConvNeXt S0..S3 (S0 includes the stem).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from rightfocus.dotted import resolve
from rightfocus.registry import Registry

#: ``{tap: {stage number: module or list of modules}}``, taps in order mid1 .. final
Cut = Mapping[str, Mapping[int, Any]]


@dataclass(frozen=True)
class Backbone:
    """An architecture: how to build it, where to cut it, which pretrained files it starts from.

    family: the architecture family ("resnet", "convnext", ...; the name of the file that registers it).
    constructor: ``constructor(num_classes=K, **options) -> nn.Module`` in torchvision's layout (random
        init; weights only ever come from local files), or ``"module:function"``; None for an
        architecture only one kind's own module builds (the B-cos ViT).
    cut: ``cut(net) -> Cut`` (see the module docstring); None: not usable by vanilla / AIM.
    classifier: the attribute of `net` holding its classifier; `classifier_input` says what it reads:
        "vector" (the globally average-pooled, flattened features: ResNet, DenseNet) or "map" (the
        pooled [N, C, 1, 1] map: ConvNeXt's LayerNorm2d comes first).
    drop_path_option: the constructor's stochastic-depth keyword (ConvNeXt), None: it has none.
    pretrained: model kind -> weights file the papers' grids start from (a release file under its own
        name, read from $WEIGHTS_ROOT; `rightfocus.models.release.RELEASES` says who publishes it).
    resolution: the input side length the architecture is used at by default (pixels).
    """

    name: str
    label: str
    family: str
    constructor: Callable[..., Any] | str | None = None
    cut: Callable[[Any], Cut] | None = None
    classifier: str = "fc"
    classifier_input: str = "vector"
    drop_path_option: str | None = None
    pretrained: Mapping[str, str] = field(default_factory=dict)
    resolution: int | None = None

    @property
    def buildable(self) -> bool:
        """Whether the vanilla kind and AIM can build it (it has a constructor and a cut)."""
        return self.constructor is not None and self.cut is not None

    def build_net(self, num_classes: int, **options: Any) -> Any:
        """The torchvision-layout network at random initialisation."""
        if self.constructor is None:
            raise ValueError(f"backbone {self.name!r} has no constructor here (only its own model kind builds it)")
        return resolve(self.constructor)(num_classes=num_classes, **options)


BACKBONES: Registry[Backbone] = Registry(
    "backbone", "register a rightfocus.models.Backbone in rightfocus.models.BACKBONES (see docs/extending.md)")


def register_backbone(entry: Backbone) -> Backbone:
    """Add `entry` to `BACKBONES` under its name."""
    BACKBONES.register(entry.name, entry)
    return entry


def buildable() -> tuple[str, ...]:
    """Names of the backbones the vanilla kind and AIM build, in registration order."""
    return tuple(name for name, b in BACKBONES.items() if b.buildable)


def pretrained_files(kind: str) -> dict[str, str]:
    """Backbone name -> the pretrained weights file `kind` starts from, where one is named."""
    return {name: b.pretrained[kind] for name, b in BACKBONES.items() if kind in b.pretrained}
