"""Shared plot helpers for every renderer (model guidance and AIM): style, per-loss markers, the
baseline-dominance shading of Rao et al. Fig. 5, heatmap panels, placeholders, and saving.

Colours are the Okabe-Ito colour-blind-safe palette; markers follow the paper's Fig. 5 legend
(Energy dots, L1 triangles, PPCE pentagons, RRR* diamonds, baseline a cross)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # renderers run headless (make, CI, papermill)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rightfocus.models.kinds import MODEL_KINDS  # noqa: E402

#: Okabe-Ito palette (colour-blind safe)
OKABE_ITO = {
    "orange": "#E69F00", "skyblue": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000",
}

#: loss -> marker and colour, following the paper's Fig. 5 legend (colours made colour-blind safe);
#: labels come from the loss registry (`loss_label`), other losses get `loss_style`'s fallback
LOSS_MARKS: dict[str, dict[str, Any]] = {
    "energy": {"marker": "o", "color": OKABE_ITO["vermillion"]},
    "l1": {"marker": "^", "color": OKABE_ITO["green"]},
    "ppce": {"marker": "p", "color": OKABE_ITO["orange"]},
    "rrr": {"marker": "D", "color": OKABE_ITO["blue"]},
}


def loss_label(name: str) -> str:
    """The registered label of localisation loss `name` (`rightfocus.losses`), else the name itself."""
    from rightfocus.losses import LOCALISATION_LOSSES

    entry = LOCALISATION_LOSSES.get(str(name))
    return entry.label if entry is not None else str(name)


def loss_style(name: str) -> dict[str, Any]:
    """Marker, colour and label of a loss in plots: the paper's marks (`LOSS_MARKS`), grey circles for a
    loss without them; the label from the registry."""
    return {**LOSS_MARKS.get(name, {"marker": "o", "color": "grey"}), "label": loss_label(name)}


BASELINE_STYLE: dict[str, Any] = {"marker": "X", "s": 90, "facecolor": "white", "edgecolor": "black",
                                  "linewidth": 1.2, "zorder": 6, "label": "Baseline"}
#: colours of the regions that strictly dominate / are strictly dominated by the baseline (Fig. 5)
DOMINATING_COLOR = "#b8e0c8"
DOMINATED_COLOR = "#d9d9d9"

#: a sequential list for other hues (dilation, annotation fraction, layer), colour-blind safe
SEQUENTIAL = [OKABE_ITO[k] for k in ("blue", "skyblue", "green", "orange", "vermillion", "purple")]

METRIC_LABELS = {"f1": "F1 (%)", "map": "mAP (%)", "epg": "EPG (%)", "iou": "IoU (%)",
                 "onobj_epg": "On-object EPG (%)", "accuracy": "Accuracy (%)"}
MODEL_LABELS = {name: kind.label for name, kind in MODEL_KINDS.items()}
TAP_LABELS = {"input": "Input", "mid1": "Mid1", "mid2": "Mid2", "mid3": "Mid3", "final": "Final"}

PANEL_SIZE = (2.6, 2.2)  # inches per subplot: small figures keep the demo fast


def use_style() -> None:
    """Seaborn's paper style with the colour-blind palette; call once before drawing."""
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=0.8)
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "axes.titlesize": 8,
                         "pdf.fonttype": 42, "legend.fontsize": 6})


def subplots(nrows: int, ncols: int, **kw: Any) -> tuple[Figure, np.ndarray]:
    """A figure with a 2-D array of axes sized by `PANEL_SIZE`."""
    size = kw.pop("panel", PANEL_SIZE)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, **kw)
    return fig, axes


def shade_baseline_regions(ax: Any, x0: float, y0: float) -> None:
    """Shade the region strictly dominating the baseline (x > x0 and y > y0, green) and the region
    it strictly dominates (x < x0 and y < y0, grey), as in Rao et al. Fig. 5. Call after the data
    are drawn: the shading spans the current axis limits (which it keeps)."""
    xl, yl = ax.get_xlim(), ax.get_ylim()
    xlo, xhi = min(xl[0], x0), max(xl[1], x0)
    ylo, yhi = min(yl[0], y0), max(yl[1], y0)
    for (xa, xb, ya, yb), color in (((x0, xhi, y0, yhi), DOMINATING_COLOR), ((xlo, x0, ylo, y0), DOMINATED_COLOR)):
        ax.add_patch(matplotlib.patches.Rectangle((xa, ya), xb - xa, yb - ya, facecolor=color,
                                                  edgecolor="none", alpha=0.6, zorder=0))
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(ylo, yhi)


def region_of(x: float, y: float, x0: float, y0: float) -> str:
    """Which Fig. 5 region a point lies in relative to the baseline (x0, y0): "dominating",
    "dominated" or "tradeoff" (ties count as trade-off: the paper's regions are strict)."""
    if x > x0 and y > y0:
        return "dominating"
    if x < x0 and y < y0:
        return "dominated"
    return "tradeoff"


def draw_baseline(ax: Any, x0: float, y0: float) -> None:
    ax.scatter([x0], [y0], **BASELINE_STYLE)


def add_legend(fig: Figure, handles_from: Any | None = None, ncol: int = 6) -> None:
    """One legend for the whole figure (from the axes holding the most labelled artists)."""
    handles, labels = {}, []
    for ax in ([handles_from] if handles_from is not None else fig.axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles and not lab.startswith("_"):
                handles[lab] = h
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=min(ncol, len(handles)),
                   bbox_to_anchor=(0.5, 1.0), frameon=False)


def heatmap(ax: Any, attribution: np.ndarray | None, image: np.ndarray | None = None,
            boxes: Sequence[Sequence[float]] = (), title: str = "", box_color: str = "#0072B2") -> None:
    """Draw an attribution map (positive part, max-normalised, 'Reds'), or the image when
    `attribution` is None, with boxes (x0, y0, x1, y1) in pixels."""
    if attribution is None:
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
    else:
        a = np.clip(np.asarray(attribution, dtype=float), 0, None)
        m = a.max()
        ax.imshow(a / m if m > 0 else a, cmap="Reds", vmin=0, vmax=1, interpolation="nearest")
    for b in boxes:
        x0, y0, x1, y1 = b[-4:]
        ax.add_patch(matplotlib.patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                                  edgecolor=box_color, linewidth=1.0))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=6)


def placeholder(kind: str, fig_id: str, reason: str) -> Any:
    """An explicit placeholder: a figure with the reason as text, or a one-row table."""
    from rightfocus.figures import Table

    if kind == "table":
        return Table(pd.DataFrame({"id": [fig_id], "status": ["placeholder"], "reason": [reason]}),
                     notes=[f"PLACEHOLDER: {reason}"], title=fig_id)
    fig = plt.figure(figsize=(5, 1.6))
    fig.text(0.5, 0.5, f"{fig_id}: PLACEHOLDER\n" + textwrap.fill(reason, 70), ha="center", va="center",
             fontsize=8, color="#7f0000")
    return fig


def save_figure(fig: Figure, stem: Path, notes: Sequence[str] = (), flags: Sequence[str] = ()) -> list[Path]:
    """Save `fig` as <stem>.png and <stem>.pdf, with `notes` (deviations) and `flags` (operating-point
    footnotes, `figures.operating_point.footnotes`) as a footnote."""
    lines = [f"Operating point: {f}" for f in flags] + [f"Deviation: {n}" for n in notes]
    if lines:
        text = "\n".join(textwrap.fill(line, 120) for line in lines)
        fig.text(0.0, 0.0, text, ha="left", va="top", fontsize=6, color="#444444", transform=fig.transFigure)
    # One layout pass and one tight bounding box (inches) for both files, then one draw per file:
    # `bbox_inches="tight"` (or the layout engine `tight_layout()` leaves behind) makes savefig add a
    # draw without output to every file.
    fig.draw_without_rendering()
    bbox = fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    fig.set_layout_engine(None)  # the layout is done (rc figure.autolayout is off: no engine)
    paths = []
    for ext in ("png", "pdf"):
        path = stem.with_name(f"{stem.name}.{ext}")
        fig.savefig(path, bbox_inches=bbox)
        paths.append(path)
    plt.close(fig)
    return paths


def to_markdown(frame: pd.DataFrame, floatfmt: str = "{:.1f}") -> str:
    """A GitHub markdown table (no extra dependency); floats with `floatfmt`, NaN as '-'."""

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "-"
        if isinstance(v, (float, np.floating)):
            return floatfmt.format(v)
        return str(v).replace("|", "\\|")

    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def save_table(table: Any, stem: Path, notes: Sequence[str] = (), flags: Sequence[str] = ()) -> list[Path]:
    """Save a `figures.Table` as <stem>.csv and <stem>.md (title, table, notes, operating-point flags,
    deviations)."""
    csv = stem.with_name(f"{stem.name}.csv")
    md = stem.with_name(f"{stem.name}.md")
    from rightfocus.runs.store import atomic_write_text

    atomic_write_text(csv, table.frame.to_csv(index=False))  # readers never see half a table
    parts = [f"# {table.title or stem.name}", "", to_markdown(table.frame), ""]
    parts += [f"Note: {n}" for n in table.notes]
    parts += [f"Operating point: {f}" for f in flags]
    parts += [f"Deviation: {n}" for n in notes]
    atomic_write_text(md, "\n".join(parts).rstrip() + "\n")
    return [csv, md]


def __getattr__(name: str) -> Any:
    if name == "LOSS_STYLE":  # deprecated: the paper's four losses' styles as one table
        import warnings

        warnings.warn("figures.style.LOSS_STYLE is deprecated; use loss_style(name)", DeprecationWarning,
                      stacklevel=2)
        return {n: loss_style(n) for n in LOSS_MARKS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
