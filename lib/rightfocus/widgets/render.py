"""Matplotlib drawing for the inspector and the perception study (no state, no widgets).

Heatmaps are drawn like the papers' figures: the positive part, max-normalised per map, overlaid on the
image with a colormap and an alpha (MG Figs. 1/9, AIM Figs. 3/32).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _figure(nrows: int, ncols: int, size: float = 2.6):
    # the object-oriented API (no pyplot state): figures are safe to build in any thread / headless
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size * ncols, (size + 0.7) * nrows + 0.3), dpi=90)
    # fixed margins, not tight_layout: that renders the figure once more just to measure it
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False,
                                      gridspec_kw={"left": 0.01, "right": 0.99, "bottom": 0.01, "top": 0.84,
                                                   "wspace": 0.05, "hspace": 0.45}))
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def to_display(image: Any) -> np.ndarray:
    """Image [3, H, W] (tensor or array) or [H, W, 3] in [0, 1] -> float array [H, W, 3]."""
    arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.clip(arr, 0.0, 1.0)


def normalise_map(heatmap: Any) -> np.ndarray:
    """Positive part divided by its maximum (an all-non-positive map stays zero)."""
    arr = np.asarray(heatmap.detach().cpu() if hasattr(heatmap, "detach") else heatmap, dtype=np.float32)
    arr = np.maximum(arr, 0.0)
    top = float(arr.max()) if arr.size else 0.0
    return arr / top if top > 0 else arr


def draw_overlay(ax, image: np.ndarray, heatmap: Any, cmap: str = "jet", alpha: float = 0.5) -> None:
    ax.imshow(image)
    ax.imshow(normalise_map(heatmap), cmap=cmap, alpha=float(alpha), vmin=0.0, vmax=1.0)


def draw_boxes(ax, boxes: Any, highlight: int | None = None, names: Sequence[str] | None = None) -> None:
    """Rectangles for rows (class, x0, y0, x1, y1), end exclusive; the target class's boxes drawn thick."""
    from matplotlib.patches import Rectangle

    rows = np.asarray(boxes.detach().cpu() if hasattr(boxes, "detach") else boxes, dtype=np.float32).reshape(-1, 5)
    for c, x0, y0, x1, y1 in rows:
        strong = highlight is None or int(c) == highlight
        # pixel centres sit at integers: a box covering columns x0..x1-1 spans x0-0.5 .. x1-0.5
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                               edgecolor="cyan" if strong else "white", linewidth=2.0 if strong else 0.8))
        if names is not None and 0 <= int(c) < len(names):
            ax.text(x0, y0, names[int(c)], color="black", fontsize=6, va="bottom",
                    bbox={"facecolor": "cyan", "pad": 1, "linewidth": 0})


def draw_outline(ax, seg: Any) -> None:
    """The segmentation's object outline (pixels > 0, void 255 ignored)."""
    arr = np.asarray(seg.detach().cpu() if hasattr(seg, "detach") else seg)
    obj = ((arr > 0) & (arr != 255)).astype(np.float32)
    if obj.any() and not obj.all():
        ax.contour(obj, levels=[0.5], colors="yellow", linewidths=1.0)


def inspector_figure(view: Any, cmap: str = "jet", alpha: float = 0.5):
    """The inspector's current view (a `widgets.view.View`; views never import the state logic): the image with boxes / outline, then one overlay per run, and a
    row per run with masks: AIM's per-stage masks and merged mask, and (``show_guidance``) the guidance
    signal a guided run was trained with."""
    panels = view.panels
    mask_cols = max([len(p.masks) for p in panels] + [0])
    ncols = max(1 + len(panels), mask_cols)
    nrows = 1 + sum(1 for p in panels if p.masks)
    fig, axes = _figure(nrows, ncols)
    image = to_display(view.image)
    ax = axes[0, 0]
    ax.imshow(image)
    draw_boxes(ax, view.boxes, highlight=view.target, names=view.class_names)
    if view.seg is not None:
        draw_outline(ax, view.seg)
    ax.set_title(f"#{view.index} {view.target_name}", fontsize=8)
    row = 1
    for j, p in enumerate(panels, start=1):
        ax = axes[0, j]
        draw_overlay(ax, image, p.heatmap, cmap, alpha)
        draw_boxes(ax, view.boxes, highlight=view.target)
        ax.set_title(p.title(), fontsize=7)
        if p.masks:
            for k, (name, mask) in enumerate(p.masks.items()):
                ax = axes[row, k]
                ax.imshow(np.asarray(mask, dtype=np.float32), cmap="gray", vmin=0, vmax=1)
                ax.set_axis_on()  # a frame, so that an all-active (white) mask is visible
                ax.set_xticks([])
                ax.set_yticks([])
                epoch = f" (epoch {p.mask_epoch})" if p.mask_epoch is not None else ""
                ax.set_title(f"{p.label}: {name}{epoch}", fontsize=7)
            row += 1
    fig.suptitle(view.caption, fontsize=8)
    return fig


def study_figure(image: Any, left: Any, right: Any, title: str, question: str, cmap: str = "jet",
                 alpha: float = 0.5, simulated: bool = False):
    """One study trial (AIM Fig. 32): the image, map A (left), map B (right)."""
    fig, axes = _figure(1, 3)
    img = to_display(image)
    axes[0, 0].imshow(img)
    axes[0, 0].set_title("image", fontsize=8)
    for ax, heat, name in ((axes[0, 1], left, "A"), (axes[0, 2], right, "B")):
        draw_overlay(ax, img, heat, cmap, alpha)
        ax.set_title(name, fontsize=10)
    fig.suptitle(f"{title}{' (simulated)' if simulated else ''}" + (f"\n{question}" if question else ""), fontsize=8)
    return fig


def png_width(data: bytes) -> int:
    """Pixel width of PNG bytes (read from the IHDR chunk)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        raise ValueError("not PNG data")
    return int.from_bytes(data[16:20], "big")


def save_png(fig, path) -> None:
    """Write a figure as PNG (Agg canvas, works without a display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=fig.dpi)
