"""The B-cos ViT-S with convolutional stem (B-cos-v2's vitc_s_patch1_14; Rao et al. 2023, Sec. 5.3):
built by the bcos kind only (models/bcos_vit.py), listed here for its pretrained file."""

from __future__ import annotations

from rightfocus.models.backbones.base import Backbone, register_backbone

register_backbone(Backbone("vit_s", "ViT-S", "vit", pretrained={"bcos": "bcos_vitc_s_patch1_14-cf55c88f0c.pth"},
                           resolution=224))
