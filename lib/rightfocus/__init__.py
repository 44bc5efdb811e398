"""rightfocus: model guidance (Rao et al., ICCV 2023) and AIM (Alshami et al., 2025), reproducibly."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`rightfocus.Guide` (guide any nn.Module classifier), imported on first use so that
    ``import rightfocus`` stays light."""
    if name == "Guide":
        from rightfocus.guide import Guide

        return Guide
    raise AttributeError(f"module 'rightfocus' has no attribute {name!r}")


__all__ = ["Guide", "__version__"]
