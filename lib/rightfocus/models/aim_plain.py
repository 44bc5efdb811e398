"""The plain classifier of an AIM comparison (Alshami et al. 2025, Table 6): AIM's own bottom-up
backbone with its own classifier, so "with vs without AIM" differs only by AIM. Here (not in the
training loop) so that `runs.store.load_checkpoint` can rebuild it without importing training."""

from __future__ import annotations

from pathlib import Path

from rightfocus.models.taps import TappedModel


class PlainBackbone(TappedModel):
    """The baseline of an AIM comparison: exactly AIM's bottom-up backbone (same stages, same
    code) with the backbone's own classifier, so "with vs without AIM" differs only by AIM."""

    kind = "vanilla"
    input_encoding = "imagenet"

    def __init__(self, arch: str, num_classes: int, weights: str | Path | None = None,
                 drop_path: float | None = None) -> None:
        super().__init__()
        from rightfocus.models.aim_backbones import build_backbone

        backbone = build_backbone(arch, num_classes, weights, drop_path)
        self.stages, self.head = backbone.stages, backbone.head

