"""Backbones (architectures) as a registry, `BACKBONES`, one file per family (timm-style): each file
registers its `Backbone` entries on import. To add one, see docs/extending.md "Add a backbone"."""

from rightfocus.models.backbones.base import BACKBONES, Backbone, Cut, buildable, pretrained_files, register_backbone
from rightfocus.models.backbones import convnext, resnet, densenet, vit  # noqa: F401,E402  (registration order)

__all__ = ["BACKBONES", "Backbone", "Cut", "buildable", "pretrained_files", "register_backbone"]
