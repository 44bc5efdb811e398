"""Model guidance: every quantitative Pareto figure (Rao et al. 2023, Figs. 4-8, 10, 12, B1-B9,
X1-X11). Each panel shows, per loss (or per dilation / annotation fraction), the TEST metrics of
the checkpoints on the configuration's 3-D validation front pooled over lambda, the 2-D front
through them, the baseline cross and the regions that strictly dominate / are dominated by it."""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib
import numpy as np

from rightfocus import pareto
from rightfocus.figures import MissingResults, RenderContext, register, style
from rightfocus.figures.mg_common import (
    LOSSES, MODEL_KINDS, PCT, Filter, draw_pareto_panel, guided, match, model_columns, not_gradcam,
    pareto_grid, require, tap_rows, layer_speedup_record, tap_speedups, values_in,
)
from rightfocus.figures.mg_common import mg_protocol

MAIN_TAPS = ("input", "final")
MID_TAPS = ("mid1", "mid2", "mid3")
ALL_TAPS = ("input", "mid1", "mid2", "mid3", "final")


def _metric_rows(metrics: Sequence[str], taps: Sequence[str]) -> tuple[list[tuple[str, Filter]], list[str]]:
    """Rows for each (metric, tap) pair, metric-major (Fig. X1: EPG block, then IoU block)."""
    rows, ys = [], []
    for m in metrics:
        for t in taps:
            rows.append((f"{style.METRIC_LABELS[m].split(' ')[0]} @ {style.TAP_LABELS[t]}", {"config_tap": t}))
            ys.append(m)
    return rows, ys


# ---- Fig. 4: model selection --------------------------------------------------------------------

@register("mg.fig4", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. 4, Sec. 4",
              "we select the set of Pareto-dominant models [40, 41, 5] across three metrics-F1, EPG, and "
              "IoU-for each training configuration, as defined by a combination of attribution method, layer, "
              "and loss.",
              "voc-main"))
def fig4(ctx: RenderContext) -> Any:
    """All validation checkpoints (epochs x lambda) of B-cos / input / Energy in F1-EPG-IoU, and the
    Pareto-dominant set pooled over lambda (Fig. 4)."""
    df = ctx.metrics("voc-main")
    cell = {"model_kind": "bcos", "config_tap": "input", "loss": "energy"}
    rows = match(guided(df), cell)
    if rows.empty:  # fall back to any guided configuration, named in the title
        rows = guided(df)
    rows = require(rows, "guided runs", ctx)
    first = rows.iloc[0]
    rows = match(rows, {k: first[k] for k in ("model_kind", "arch", "config_tap", "config_method", "loss")})
    val = rows[(rows["split"] == "val") & (rows["epoch"] >= 1) & (rows["tap"] == rows["config_tap"])
               & (rows["method"] == rows["config_method"])]
    val = require(val, "validation rows", ctx)
    front = pareto.front_rows(val)
    fig, axes = style.subplots(1, 3)
    lams = sorted(val["lam"].unique())
    for i, lam in enumerate(lams):
        v = val[val["lam"] == lam]
        axes[0, 0].scatter(v["f1"] * PCT, v["epg"] * PCT, s=12, color=style.SEQUENTIAL[i % 6],
                           label=f"lambda={lam:g}", alpha=0.8)
    axes[0, 0].set_title("all checkpoints (val)")
    for ax, y in ((axes[0, 1], "epg"), (axes[0, 2], "iou")):
        ax.scatter(val["f1"] * PCT, val[y] * PCT, s=10, color="#bbbbbb", label="dominated")
        ax.scatter(front["f1"] * PCT, front[y] * PCT, s=16, color=style.loss_style("energy")["color"],
                   edgecolor="black", linewidth=0.3, label="Pareto-dominant (F1, EPG, IoU)")
        ax.set_title(f"Pareto set: {y.upper()} vs F1")
    for ax, y in zip(axes[0], ("epg", "epg", "iou")):
        ax.set_xlabel(style.METRIC_LABELS["f1"])
        ax.set_ylabel(style.METRIC_LABELS[y])
    style.add_legend(fig)
    fig.suptitle(f"Model selection: {style.MODEL_LABELS.get(first['model_kind'], first['model_kind'])} "
                 f"{first['arch']}, {first['config_method']} @ {first['config_tap']}, "
                 f"{style.loss_label(first['loss'])}; "
                 f"{len(val)} checkpoints, {len(front)} dominant", y=1.08, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


# ---- Figs. 5, 6, B1, B2, B3, X1-X4: main results ------------------------------------------------

@register("mg.fig5a", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. 5a, Sec. 5.1",
              "For each configuration, we show the Pareto fronts (cf. Fig. 4) across regularization strengths "
              "lambda_loc and epochs (cf. Sec. 5 and Fig. 4).",
              "voc-main"))
def fig5a(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "voc-main", tap_rows(MAIN_TAPS), model_columns(), y="epg", hue_order=LOSSES,
                       title="VOC: EPG vs F1 (test), fronts pooled over lambda")


@register("mg.fig5b", kind="figure", groups=["coco-main"],
          protocol=mg_protocol(
              "Fig. 5b, Sec. 5.1",
              "For each configuration, we show the Pareto fronts (cf. Fig. 4) across regularization strengths "
              "lambda_loc and epochs (cf. Sec. 5 and Fig. 4).",
              "coco-main"))
def fig5b(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "coco-main", tap_rows(MAIN_TAPS), model_columns(), y="epg", hue_order=LOSSES,
                       title="COCO: EPG vs F1 (test), fronts pooled over lambda")


@register("mg.fig6", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. 6, Sec. 5.1",
              "For each configuration, we show the Pareto fronts (Fig. 4) across regularization strengths "
              "lambda_loc and all epochs",
              "voc-main"))
def fig6(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "voc-main", tap_rows(("final",)), model_columns(), y="iou", hue_order=LOSSES,
                       title="VOC: IoU vs F1 at the final layer")


@register("mg.figB1", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. B1, Supp. B.1",
              "We show IoU vs. F1 for all localization loss functions, attribution methods, and layers.",
              "voc-main"))
def figB1(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "voc-main", tap_rows(MAIN_TAPS), model_columns(), y="iou", hue_order=LOSSES,
                       title="VOC: IoU vs F1, all losses, models and layers")


@register("mg.figB2", kind="figure", groups=["coco-main"],
          protocol=mg_protocol(
              "Fig. B2, Supp. B.1",
              "We show IoU vs. F1 for all localization loss functions, attribution methods, and layers.",
              "coco-main"))
def figB2(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "coco-main", tap_rows(MAIN_TAPS), model_columns(), y="iou", hue_order=LOSSES,
                       title="COCO: IoU vs F1, all losses, models and layers")


def _full(ctx: RenderContext, group: str, x: str, name: str) -> Any:
    rows, ys = _metric_rows(("epg", "iou"), MAIN_TAPS)
    return pareto_grid(ctx, group, rows, model_columns(), x=x, y=ys, hue_order=LOSSES,
                       title=f"{name}: EPG (top) and IoU (bottom) vs {x.upper()}")


@register("mg.figB3", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. B3, Supp. B.1",
              "in Fig. B3, we show both EPG as well as IoU results plotted against the mAP score.",
              "voc-main"))
def figB3(ctx: RenderContext) -> Any:
    return _full(ctx, "voc-main", "map", "VOC")


@register("mg.figX1", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. X1, Supp. X",
              "EPG (a) and IoU (b) vs. F1 on VOC, for different losses (markers) and models (columns), "
              "optimized at different layers (rows)",
              "voc-main"))
def figX1(ctx: RenderContext) -> Any:
    return _full(ctx, "voc-main", "f1", "VOC, full results")


@register("mg.figX2", kind="figure", groups=["coco-main"],
          protocol=mg_protocol(
              "Fig. X2, Supp. X",
              "we provide the full results across datasets, models, layers, experiments, and metrics",
              "coco-main"))
def figX2(ctx: RenderContext) -> Any:
    return _full(ctx, "coco-main", "f1", "COCO, full results")


@register("mg.figX3", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. X3, Supp. X",
              "we provide the full results across datasets, models, layers, experiments, and metrics",
              "voc-main"))
def figX3(ctx: RenderContext) -> Any:
    return _full(ctx, "voc-main", "map", "VOC, full results")


@register("mg.figX4", kind="figure", groups=["coco-main"],
          protocol=mg_protocol(
              "Fig. X4, Supp. X",
              "we provide the full results across datasets, models, layers, experiments, and metrics",
              "coco-main"))
def figX4(ctx: RenderContext) -> Any:
    return _full(ctx, "coco-main", "map", "COCO, full results")


# ---- Figs. 7, B9: other B-cos backbones ---------------------------------------------------------

def _backbone_cols(ctx: RenderContext) -> list[tuple[str, Filter]]:
    """One column per (model kind, backbone) with guided runs in voc-backbones (the paper's: B-cos
    DenseNet-121 and ViT-S), kinds in `MODEL_KINDS` order, backbones sorted by name."""
    from rightfocus.models.kinds import MODEL_KINDS as ALL_KINDS

    df = ctx.metrics("voc-backbones")
    present = values_in(df, "model_kind")
    kinds = [k for k in ALL_KINDS if k in present] + sorted(k for k in present if k not in ALL_KINDS)
    cols = [(f"{style.MODEL_LABELS.get(k, k)} {a}", {"model_kind": k, "arch": a, "config_tap": "input"})
            for k in kinds for a in values_in(df, "arch", {"model_kind": k})]
    if not cols:
        raise MissingResults(f"voc-backbones has no guided runs in {ctx.results / ctx.profile}")
    return cols


@register("mg.fig7", kind="figure", groups=["voc-backbones"],
          protocol=mg_protocol(
              "Fig. 7, Sec. 5.1",
              "We observe the same trends as in Fig. 5a for different backbone architectures, specifically a "
              "B-cos DenseNet-121 and a B-cos ViT-S.",
              "voc-backbones"))
def fig7(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "voc-backbones", [("Input", {})], _backbone_cols(ctx), y="epg", hue_order=LOSSES,
                       title="VOC: EPG vs F1 for other B-cos backbones (input layer)")


@register("mg.figB9", kind="figure", groups=["voc-backbones"],
          protocol=mg_protocol(
              "Fig. B9, Supp. B.7",
              "we evaluate the best performing configurations from our study, i.e. performing guidance using "
              "B-cos attributions at input, on additional model backbones, specifically DenseNet-121 and ViT-S.",
              "voc-backbones"))
def figB9(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "voc-backbones", [("EPG", {}), ("IoU", {})], _backbone_cols(ctx), y=["epg", "iou"],
                       hue_order=LOSSES, title="VOC: EPG and IoU vs F1 for other B-cos backbones")


# ---- Figs. 8, B5, X7, X8: intermediate layers --------------------------------------------------

@register("mg.fig8", kind="figure", groups=["voc-layers"],
          protocol=mg_protocol(
              "Fig. 8, Sec. 5.4 (R9)",
              "we regularize B-cos attributions at the final and at three intermediate layers (Mid{1,2,3}), and"
              " evaluate the localization of attributions at the input.",
              "voc-layers",
              notes=(
                  "speed-up panel: training step times measured side by side in one process "
                  "(benchmarks/bench_layers.py), read from the dated record "
                  "benchmarks/recorded/layer_speedup_*.json",)))
def fig8(ctx: RenderContext) -> Any:
    """Input-level EPG of B-cos models guided at Mid1..Final vs at the input, and the training speed-up
    per tap (step time guided at the input / at the tap) from the tracked step-time record
    (`mg_common.layer_speedup_record`, measured side by side by `benchmarks/bench_layers.py`; the device
    is named on the panel). The runs' own epoch times vary with machine load: `mg_common.tap_speedups`
    writes them to the untracked ``<results>/<profile>/timings/mg.fig8.csv`` only."""
    df = ctx.metrics("voc-layers")
    g = require(match(guided(df), {"model_kind": "bcos"}), "guided B-cos runs", ctx)
    taps = [t for t in (*MID_TAPS, "final") if (g["config_tap"] == t).any()]
    if not taps:
        raise MissingResults("voc-layers has no B-cos runs guided at mid1/mid2/mid3/final")
    losses = [l for l in LOSSES if (g["loss"] == l).any()]
    fig, axes = style.subplots(len(losses), len(taps) + 1)
    tap_speedups(ctx, g)  # the runs' wall clocks -> the untracked timings csv
    for i, loss in enumerate(losses):
        for j, tap in enumerate(taps):
            draw_pareto_panel(axes[i, j], df, {"model_kind": "bcos", "loss": loss, "config_tap": ["input", tap]},
                              hue="config_tap", hue_order=["input", tap], eval_tap="input")
            axes[i, j].set_title(f"{style.loss_label(loss)}: @{style.TAP_LABELS[tap]} vs @Input")
        if i:
            axes[i, -1].set_axis_off()
    _speedup_panel(axes[0, -1], layer_speedup_record())
    style.add_legend(fig)
    fig.suptitle("B-cos: input-level EPG vs F1 when guiding at deeper layers, and the training speed-up",
                 y=1.02, fontsize=9)
    fig.tight_layout()
    return fig


def _speedup_panel(ax: Any, record: dict[str, Any] | None) -> None:
    """Bars: speed-up of a training step guided at each tap over one guided at the input."""
    if record is None:
        ax.text(0.5, 0.5, "no step-time record:\n`make bench-layers`", ha="center", va="center", fontsize=6,
                transform=ax.transAxes)
        ax.set_axis_off()
        return
    sp = record["speedup_vs_input"]
    taps = [t for t in ("input", *MID_TAPS, "final") if t in sp]
    ax.bar([style.TAP_LABELS[t] for t in taps], [sp[t] for t in taps], color="#4c72b0")
    ax.axhline(1.0, color="#444444", lw=0.6, ls="--")
    for x, t in enumerate(taps):
        ax.text(x, sp[t], f"{sp[t]:.2f}x", ha="center", va="bottom", fontsize=5)
    ax.set_ylabel("training speed-up vs @Input")
    ax.set_title(f"training step, measured side by side\n{record['model']}, {record['size']} px, batch "
                 f"{record['batch']}\n{record['device']}, {record['date']}, median of {record['rounds']} rounds",
                 fontsize=5.5)


def _layers(ctx: RenderContext, y: str) -> Any:
    return pareto_grid(ctx, "voc-layers", tap_rows(ALL_TAPS), model_columns(), y=y, hue_order=LOSSES,
                       title=f"VOC: {y.upper()} vs F1, guidance (and evaluation) at every layer")


@register("mg.figB5", kind="figure", groups=["voc-layers"],
          protocol=mg_protocol(
              "Fig. B5, Supp. B.3",
              "we show results for performing model guidance at additional intermediate layers: Mid1, Mid2, and"
              " Mid3.",
              "voc-layers"))
def figB5(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "voc-layers", tap_rows(MID_TAPS), model_columns(), y="epg", hue_order=LOSSES,
                       title="VOC: EPG vs F1 at intermediate layers")


@register("mg.figX7", kind="figure", groups=["voc-layers"],
          protocol=mg_protocol(
              "Fig. X7, Supp. B.3",
              "we show results for performing model guidance at additional intermediate layers: Mid1, Mid2, and"
              " Mid3.",
              "voc-layers"))
def figX7(ctx: RenderContext) -> Any:
    return _layers(ctx, "epg")


@register("mg.figX8", kind="figure", groups=["voc-layers"],
          protocol=mg_protocol(
              "Fig. X8, Supp. B.3",
              "we show results for performing model guidance at additional intermediate layers: Mid1, Mid2, and"
              " Mid3.",
              "voc-layers"))
def figX8(ctx: RenderContext) -> Any:
    return _layers(ctx, "iou")


# ---- Figs. B4, X5, X6: GradCAM -----------------------------------------------------------------

def _gradcam(ctx: RenderContext, group: str, metrics: Sequence[str], name: str) -> Any:
    rows: list[tuple[str, Filter]] = []
    ys: list[str] = []
    for m in metrics:
        rows.append((f"{m.upper()}: main attribution @Final", {"config_tap": "final", "config_method": not_gradcam}))
        rows.append((f"{m.upper()}: GradCAM @Final", {"config_tap": "final", "config_method": "gradcam"}))
        ys += [m, m]
    cols = [(style.MODEL_LABELS[k], {"model_kind": k}) for k in MODEL_KINDS]
    main = "voc-main" if group.startswith("voc") else "coco-main"  # the main-attribution runs live there
    return pareto_grid(ctx, group, rows, cols, y=ys, hue_order=LOSSES, also=[main],
                       title=f"{name}: GradCAM vs the model's own attribution at the final layer")


@register("mg.figB4", kind="figure", groups=["voc-gradcam"],
          protocol=mg_protocol(
              "Fig. B4, Supp. B.2",
              "we show the EPG vs. F1 results of training models with GradCAM applied at the final layer on the"
              " VOC dataset",
              "voc-gradcam"))
def figB4(ctx: RenderContext) -> Any:
    return _gradcam(ctx, "voc-gradcam", ("epg",), "VOC")


@register("mg.figX5", kind="figure", groups=["voc-gradcam"],
          protocol=mg_protocol(
              "Fig. X5, Supp. B.2",
              "for IoU results and results on COCO, please see Figs. X5 and X6.",
              "voc-gradcam"))
def figX5(ctx: RenderContext) -> Any:
    return _gradcam(ctx, "voc-gradcam", ("epg", "iou"), "VOC")


@register("mg.figX6", kind="figure", groups=["coco-gradcam"],
          protocol=mg_protocol(
              "Fig. X6, Supp. B.2",
              "for IoU results and results on COCO, please see Figs. X5 and X6.",
              "coco-gradcam"))
def figX6(ctx: RenderContext) -> Any:
    return _gradcam(ctx, "coco-gradcam", ("epg", "iou"), "COCO")


# ---- Fig. B6: on-object EPG --------------------------------------------------------------------

def _onobj_schema(ax_box: Any, ax_seg: Any) -> None:
    """Fig. B6a: which pixels count for the box EPG and for the on-object (segmentation) EPG."""
    for ax, title in ((ax_box, "EPG: inside box (+) vs outside (-)"),
                      (ax_seg, "On-object EPG: in segment (+) vs rest of box (-)")):
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_title(title, fontsize=6)
    P = matplotlib.patches
    ax_box.add_patch(P.Rectangle((0, 0), 10, 10, color=style.OKABE_ITO["skyblue"], alpha=0.5))
    ax_box.add_patch(P.Rectangle((3, 2), 4, 6, color=style.OKABE_ITO["green"], alpha=0.7))
    ax_box.add_patch(P.Ellipse((5, 5), 2.6, 5, fill=False, edgecolor="black", linestyle="--"))
    ax_seg.add_patch(P.Rectangle((0, 0), 10, 10, color="white"))
    ax_seg.add_patch(P.Rectangle((3, 2), 4, 6, color=style.OKABE_ITO["skyblue"], alpha=0.6))
    ax_seg.add_patch(P.Ellipse((5, 5), 2.6, 5, color=style.OKABE_ITO["green"], alpha=0.8))
    ax_seg.text(8.5, 9, "ignored", fontsize=5, ha="center")
    for ax in (ax_box, ax_seg):
        ax.add_patch(P.Rectangle((3, 2), 4, 6, fill=False, edgecolor=style.OKABE_ITO["blue"], linewidth=1.2))


@register("mg.figB6", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. B6, Supp. B.4",
              "we compute the fraction of positive attributions in pixels contained within the segmentation "
              "mask of the object out of positive attributions within the bounding box.",
              "voc-main"))
def figB6(ctx: RenderContext) -> Any:
    df = ctx.metrics("voc-main")
    if df["onobj_epg"].isna().all():
        raise MissingResults("voc-main has no on-object EPG (onobj_epg is null: the dataset has no segmentation)")
    rows = tap_rows(MAIN_TAPS)
    cols = model_columns()
    fig, axes = style.subplots(len(rows) + 1, len(cols))
    _onobj_schema(axes[0, 0], axes[0, 1])
    for ax in axes[0, 2:]:
        ax.axis("off")
    for i, (rl, rf) in enumerate(rows, start=1):
        for j, (cl, cf) in enumerate(cols):
            draw_pareto_panel(axes[i, j], df, {**rf, **cf}, y="onobj_epg", hue_order=["energy", "l1"],
                              shade=True)
            axes[i, j].set_title(f"{cl} | {rl}")
    style.add_legend(fig)
    fig.suptitle("(a) on-object EPG schema; (b) on-object EPG vs F1, Energy vs L1", y=1.04, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


# ---- Figs. 12, B7, X9, X10: limited annotations -------------------------------------------------

def _fraction_cols(ctx: RenderContext, kind: str | None = "bcos") -> list[tuple[str, Filter]]:
    df = ctx.metrics("voc-limited")
    filt = {"config_tap": "input", **({"model_kind": kind} if kind else {})}
    fracs = values_in(df, "annotation_fraction", filt)
    if not fracs:
        raise MissingResults(f"voc-limited has no guided runs at the input{' for ' + kind if kind else ''}")
    return [(f"{f * 100:g} % annotated", {**filt, "annotation_fraction": f}) for f in fracs]


@register("mg.fig12", kind="figure", groups=["voc-limited"],
          protocol=mg_protocol(
              "Fig. 12, Sec. 5.4 (R7)",
              "EPG results with limited annotations for a B-cos model at the input layer, optimized with the "
              "Energy and the L1 loss.",
              "voc-limited",
              notes=("lambda_loc for limited annotations: Table D2",)))
def fig12(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "voc-limited", [("B-cos @Input", {})], _fraction_cols(ctx), y="epg",
                       hue_order=["energy", "l1"], title="VOC: EPG vs F1 with limited annotations (B-cos, input)")


@register("mg.figB7", kind="figure", groups=["voc-limited"],
          protocol=mg_protocol(
              "Fig. B7, Supp. B.5",
              "We show EPG vs. F1 (left) and IoU vs. F1 (right) for B-cos attributions at the input when "
              "optimizing with the Energy and L1 localization losses, when using {1%, 10%, 100%} training "
              "annotations.",
              "voc-limited"))
def figB7(ctx: RenderContext) -> Any:
    return pareto_grid(ctx, "voc-limited", [("EPG", {}), ("IoU", {})], _fraction_cols(ctx), y=["epg", "iou"],
                       hue_order=["energy", "l1"], title="VOC: EPG and IoU vs F1 with limited annotations (B-cos)")


def _limited_all(ctx: RenderContext, y: str) -> Any:
    df = ctx.metrics("voc-limited")
    kinds = [k for k in MODEL_KINDS if k in values_in(df, "model_kind")]
    fracs = values_in(df, "annotation_fraction", {"config_tap": "input"})
    if not kinds or not fracs:
        raise MissingResults("voc-limited has no guided runs at the input")
    rows = [(style.MODEL_LABELS[k], {"model_kind": k, "config_tap": "input"}) for k in kinds]
    cols = [(f"{f * 100:g} % annotated", {"annotation_fraction": f}) for f in fracs]
    return pareto_grid(ctx, "voc-limited", rows, cols, y=y, hue_order=["energy", "l1"],
                       title=f"VOC: {y.upper()} vs F1 with limited annotations, all models")


@register("mg.figX9", kind="figure", groups=["voc-limited"],
          protocol=mg_protocol(
              "Fig. X9, Supp. B.5",
              "when using {1%, 10%, 100%} training annotations.",
              "voc-limited"))
def figX9(ctx: RenderContext) -> Any:
    return _limited_all(ctx, "epg")


@register("mg.figX10", kind="figure", groups=["voc-limited"],
          protocol=mg_protocol(
              "Fig. X10, Supp. B.5",
              "when using {1%, 10%, 100%} training annotations.",
              "voc-limited"))
def figX10(ctx: RenderContext) -> Any:
    return _limited_all(ctx, "iou")


# ---- Figs. 10, B8, X11: dilated boxes ----------------------------------------------------------

def _dilation(ctx: RenderContext, kinds: Sequence[str], title: str) -> Any:
    df = ctx.metrics("voc-dilation")
    kinds = [k for k in kinds if k in values_in(df, "model_kind")]
    dils = values_in(df, "dilation")
    if not kinds or not dils:
        raise MissingResults("voc-dilation has no guided runs for " + "/".join(kinds))
    rows = []
    for k in kinds:
        for y in ("epg", "iou"):
            rows.append((f"{style.MODEL_LABELS[k]} {y.upper()}", {"model_kind": k}, y))
    cols = [(style.loss_label(l), {"loss": l}) for l in ("energy", "l1")]
    fig, axes = style.subplots(len(rows), len(cols))
    total = 0
    for i, (rl, rf, y) in enumerate(rows):
        for j, (cl, cf) in enumerate(cols):
            total += draw_pareto_panel(axes[i, j], df, {**rf, **cf, "config_method": not_gradcam}, y=y,
                                       hue="dilation", hue_order=dils)
            axes[i, j].set_title(f"{rl} | {cl}")
    if total == 0:
        raise MissingResults("voc-dilation: no selected checkpoints")
    style.add_legend(fig)
    fig.suptitle(title, y=1.04, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


@register("mg.fig10", kind="figure", groups=["voc-dilation"],
          protocol=mg_protocol(
              "Fig. 10, Sec. 5.4 (R8)",
              "we simply dilate the bounding box size by p in {10, 25, 50}% during training",
              "voc-dilation"))
def fig10(ctx: RenderContext) -> Any:
    return _dilation(ctx, ("bcos",), "Dilated boxes (training only), B-cos: EPG and IoU vs F1")


@register("mg.figB8", kind="figure", groups=["voc-dilation"],
          protocol=mg_protocol(
              "Fig. B8, Supp. B.6",
              "We show the impact of dilating bounding boxes during training for the (a) Vanilla and (b) X-DNN "
              "models.",
              "voc-dilation"))
def figB8(ctx: RenderContext) -> Any:
    return _dilation(ctx, ("vanilla", "xdnn"), "Dilated boxes, Vanilla and X-DNN: EPG and IoU vs F1")


@register("mg.figX11", kind="figure", groups=["voc-dilation"],
          protocol=mg_protocol(
              "Fig. X11, Supp. B.6",
              "Similar to the results seen with B-cos models (Fig. 10), we find that the Energy localization "
              "loss is generally robust to coarse annotations (...) Full results in Fig. X11.",
              "voc-dilation"))
def figX11(ctx: RenderContext) -> Any:
    return _dilation(ctx, MODEL_KINDS, "Dilated boxes, all models: EPG and IoU vs F1")
