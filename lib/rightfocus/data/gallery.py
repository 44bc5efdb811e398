"""A gallery of the synthetic datasets: a few samples per kind with boxes and mask outlines, read back
through the real loaders (so it also shows that the formats round-trip). Used by `make gallery`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: how each kind is loaded for the gallery: (split, options)
_VIEWS: dict[str, tuple[str, dict[str, Any]]] = {
    "voc2007": ("train", {}),
    "coco2014": ("train", {}),
    "waterbirds": ("test", {}),
    "cub": ("train", {}),
    "travelingbirds": ("test", {}),
    "imagefolder": ("train", {"loc_csv": True}),
    "hardimagenet": ("train", {}),
}


def render_gallery(data_dir: str | Path, out_png: str | Path, per_kind: int = 4, size: int = 64) -> Path:
    """Draw `per_kind` samples of every kind found under `data_dir` (as written by `make-data all`):
    image, boxes (class name on top) and the outline of the segmentation. Returns `out_png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from rightfocus.data import load_dataset

    data_dir, out_png = Path(data_dir), Path(out_png)
    kinds = [k for k in _VIEWS if (data_dir / k).is_dir()]
    if not kinds:
        raise FileNotFoundError(f"no synthetic datasets under {data_dir}; run `.venv/bin/rightfocus make-data all "
                                f"--out {data_dir}` first (expected subfolders: {', '.join(_VIEWS)})")
    fig, axes = plt.subplots(len(kinds), per_kind, figsize=(2.0 * per_kind, 2.1 * len(kinds)), squeeze=False)
    for row, kind in zip(axes, kinds):
        split, opts = _VIEWS[kind]
        ds = load_dataset(kind, data_dir / kind, split, size=size, **opts)
        picks = np.linspace(0, len(ds) - 1, per_kind).astype(int)
        for ax, i in zip(row, picks):
            s = ds[int(i)]
            ax.imshow(s["image"].permute(1, 2, 0).numpy(), interpolation="nearest")
            if "seg" in s:
                obj = ((s["seg"] > 0) & (s["seg"] != 255)).numpy().astype(float)
                ax.contour(obj, levels=[0.5], colors="white", linewidths=0.8)
            for c, x0, y0, x1, y1 in s["boxes"].tolist():
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.2, ec="lime"))
                ax.text(x0, y0, ds.classes[int(c)][:12], fontsize=5, color="black",
                        bbox={"facecolor": "lime", "pad": 0.5, "lw": 0})
            extra = f" g{s['group']}" if "group" in s else ""
            ax.set_title(f"{kind}{extra}", fontsize=6)
            ax.axis("off")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png
