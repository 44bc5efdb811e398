"""rightfocus: model guidance (Rao et al., ICCV 2023) and AIM (Alshami et al., 2025), reproducibly."""

__version__ = "0.1.0"
