"""Guidance beyond boxes (ids ``ext.*``; runs: `experiments.ext_grids`).

- `ext.boxes_vs_masks`: boxes vs segmentation masks as the guidance signal at equal annotation budgets
  (B-cos / IxG at the input, Energy / L1): test EPG, on-object EPG and IoU against F1 for each
  configuration's own validation front (VOC, COCO), and Waterbirds' worst-group accuracy.
- `ext.annotation_free`: a Vanilla model unguided, box-guided, guided by a B-cos teacher's explanations
  and (Waterbirds) by AIM's masks, on the same axes.
- `ext.guidance_claims`: what the runs say about "boxes are enough" (MG Sec. 1, contribution 1) and about
  annotation-free guidance, as measured (holds / does not hold, with the numbers).

Every point is a TEST row of a checkpoint on the run's own validation Pareto front (guided runs) or the
baseline's selected checkpoint; the representative model (D.1.1) is the filled marker.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rightfocus.figures import MissingResults, RenderContext, Table, register, style
from rightfocus.figures.mg_common import MG_RECIPES, mg_recipes
from rightfocus.protocol import Protocol, Recipe



PCT = 100.0
SOURCE_STYLE = {"boxes": ("tab:blue", "o"), "segmentation": ("tab:orange", "^"), "teacher": ("tab:green", "D"),
                "aim": ("tab:purple", "s"), "unguided": ("black", "*")}
DATASET_NAMES = {"voc2007": "VOC", "coco2014": "COCO", "waterbirds": "Waterbirds (bird)"}
#: "boxes are as good as masks" holds for a configuration when box guidance's on-object EPG is at most
#: this many points below mask guidance's at an F1 at most this many points lower
EQUAL_WITHIN = 5.0
#: a guided model "improves" a metric when it beats the unguided model by at least this many points
IMPROVES_BY = 0.5

# ---- protocol cards: the paper-profile recipes of the ext groups (their runs are MG-style runs) ----------

def _ext_recipes(group: str) -> tuple[Recipe, ...]:
    """VOC / COCO runs as MG's D.1.1 (guided runs from their baseline), Waterbirds runs as D.1.2 (from ImageNet)."""
    from dataclasses import replace

    return (*mg_recipes(group, "voc2007", 300, 50), *mg_recipes(group, "coco2014", 60, 10),
            *(replace(r, group=group) for r in MG_RECIPES["waterbirds"]))


#: group -> the recipes of its runs in the paper profile (`experiments.ext_grids`)
EXT_RECIPES: dict[str, tuple[Recipe, ...]] = {g: _ext_recipes(g) for g in ("ext-masks", "ext-annotation-free")}


_BOXES_CLAIM = ("bounding box supervision can provide sufficient guidance ... whilst being much cheaper to obtain "
                "than semantic segmentation masks")
_SELECTION_NOTE = ("selection: each run's validation front in (F1, EPG, IoU); representative: highest val EPG with "
                   "<= 5 points F1 drop from the baseline (MG D.1.1); Waterbirds: best validation accuracy (MG D.1.2)")
_OPERATING_NOTE = "operating point: training localisation loss falls and val EPG moves from the baseline"
BOXES_VS_MASKS = Protocol(
    _BOXES_CLAIM, "MG Sec. 1, contribution 1 (argued there, tested here: beyond the paper)", _ext_recipes("ext-masks"),
    notes=("runs: B-cos (bcos) and Vanilla (IxG) at the input, Energy and L1, mask_source boxes vs segmentation, "
           "budgets 100/10/1 % (demo: 100/10 %), VOC, COCO, Waterbirds bird task",
           "metrics: test EPG and IoU against the boxes, on-object EPG against the segmentation, micro-F1; "
           "Waterbirds: worst-group accuracy", _SELECTION_NOTE, _OPERATING_NOTE))
ANNOTATION_FREE = Protocol(
    "AIM learns from labels alone which features to keep; a guided B-cos model's explanations localise the object",
    "AIM Sec. 1 and MG Sec. 5 (their outputs used as guidance signals: beyond both papers)",
    _ext_recipes("ext-annotation-free"),
    notes=("runs: Vanilla (IxG, input) unguided, boxes (Energy), teacher:<B-cos Energy run> (distill loss), "
           "aim:<AIM Waterbirds-100 run> (Energy, Waterbirds); no boxes for the teacher- and AIM-guided runs",
           "metrics: test EPG, IoU, on-object EPG, F1; Waterbirds: accuracy and worst-group accuracy",
           _SELECTION_NOTE, _OPERATING_NOTE))
GUIDANCE_CLAIMS = Protocol(
    _BOXES_CLAIM, "MG Sec. 1, contribution 1; this project's annotation-free extension",
    (*_ext_recipes("ext-masks"), *_ext_recipes("ext-annotation-free")),
    notes=(f"as well as: box guidance within {EQUAL_WITHIN:g} points of mask guidance on on-object EPG "
           f"(Waterbirds: worst-group accuracy); improves: >= {IMPROVES_BY:g} points over unguided",
           "runs that miss the operating point are listed under the table"))


def _source(ms: Any) -> str:
    return "boxes" if not isinstance(ms, str) else ms.split(":")[0]


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    """One frame of TEST rows at each run's own tap / method (baselines: the input, native method),
    with ``source`` (mask source kind or "unguided") and ``rep`` (the selected checkpoint)."""
    if df.empty:
        raise MissingResults("no runs with metrics")
    from rightfocus.runs.config import NATIVE_METHOD

    df = df[df["split"] == "test"].copy()
    base = df["is_baseline"].astype(bool)
    tap = df["config_tap"].where(~base, "input")
    method = df["config_method"].where(~base, df["model_kind"].map(dict(NATIVE_METHOD)))
    df = df[(df["tap"] == tap) & (df["method"] == method)].copy()
    df = df[df["on_front"].astype(bool) | df["selected"].astype(bool) | df["is_baseline"].astype(bool)]
    df["source"] = [("unguided" if b else _source(m)) for b, m in zip(df["is_baseline"].astype(bool), df["mask_source"]
                                                                     if "mask_source" in df else ["boxes"] * len(df))]
    df["rep"] = df["selected"].astype(bool)
    return df[df["rep"] | ~df["is_baseline"].astype(bool)]


def _label(r: pd.Series) -> str:
    kind = {"bcos": "B-cos", "vanilla": "IxG", "xdnn": "X-DNN"}.get(str(r["model_kind"]), str(r["model_kind"]))
    return f"{kind} {r['loss']} {r['annotation_fraction'] * 100:g}%" if r["source"] != "unguided" else f"{kind} baseline"


def _panel(ax: Any, rows: pd.DataFrame, y: str, title: str) -> None:
    for rid, g in rows.groupby("run_id", sort=False):
        g = g.dropna(subset=["f1", y]).sort_values("f1")
        if g.empty:
            continue
        color, marker = SOURCE_STYLE[g["source"].iloc[0]]
        frac = float(g["annotation_fraction"].iloc[0])
        ls = "-" if frac >= 1 else (":" if frac < 0.05 else "--")
        ax.plot(g["f1"] * PCT, g[y] * PCT, ls=ls, color=color, lw=0.8, alpha=0.7)
        rep = g[g["rep"]]
        face = color if g["model_kind"].iloc[0] == "bcos" else "white"
        ax.scatter(rep["f1"] * PCT, rep[y] * PCT, marker=marker, s=40, edgecolor=color, facecolor=face, zorder=3)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("F1 (%)")
    ax.set_ylabel({"epg": "EPG (%)", "onobj_epg": "on-object EPG (%)", "iou": "IoU (%)"}[y])


def _legend(fig: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker=m, ls="", label=s) for s, (c, m) in SOURCE_STYLE.items()]
    handles += [Line2D([], [], color="gray", ls=ls, label=lab) for ls, lab in
                (("-", "100 %"), ("--", "10-25 %"), (":", "1 %"))]
    handles += [Line2D([], [], color="gray", marker="o", ls="", markerfacecolor="gray", label="B-cos (filled)"),
                Line2D([], [], color="gray", marker="o", ls="", markerfacecolor="white", label="Vanilla IxG (open)")]
    fig.legend(handles=handles, loc="upper center", ncol=6, fontsize=7, frameon=False, bbox_to_anchor=(0.5, 1.0))


def _waterbirds_panel(ax: Any, rows: pd.DataFrame) -> None:
    rep = rows[rows["rep"]].copy()
    if rep.empty:
        ax.set_axis_off()
        return
    rep["name"] = [f"{_label(r)}\n{r['source']}" for _, r in rep.iterrows()]
    rep = rep.sort_values(["model_kind", "loss", "source"], na_position="first")
    x = np.arange(len(rep))
    ax.bar(x - 0.2, rep["accuracy"] * PCT, 0.4, label="accuracy", color="0.7")
    worst = rep["worst_group_acc"].astype(float) * PCT
    ax.bar(x + 0.2, worst, 0.4, label="worst group", color=[SOURCE_STYLE[s][0] for s in rep["source"]])
    for xi, w in zip(x, worst):  # the value, also where the bar has no height
        ax.annotate(f"{w:.0f}", (xi + 0.2, w), ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x, rep["name"], fontsize=6, rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Waterbirds: accuracy (gray) / worst group (colour)", fontsize=8)


def _datasets(rows: pd.DataFrame) -> list[str]:
    """The datasets drawn as rows of boxes-vs-masks panels: those in the results without evaluation
    groups (Waterbirds has a row of its own), in `rightfocus.data.DATASETS` order, unregistered ones last."""
    from rightfocus.data.registry import DATASETS

    present = set(rows["dataset"])
    ordered = [d for d in DATASETS if d in present] + sorted(d for d in present if d not in DATASETS)
    return [d for d in ordered if d in DATASETS and DATASETS[d].num_groups is None or d not in DATASETS]


def _dataset_grid(rows: pd.DataFrame, datasets: list[str]) -> tuple[Any, Any, pd.DataFrame]:
    """One row of (EPG, on-object EPG, IoU) vs F1 panels per dataset, then a Waterbirds row whose first
    panel shows accuracy and worst-group accuracy; returns the figure, its axes and the Waterbirds rows."""
    fig, axes = style.subplots(len(datasets) + 1, 3, panel=(3.3, 3.0))
    for i, ds in enumerate(datasets):
        sub = rows[rows["dataset"] == ds]
        for j, y in enumerate(("epg", "onobj_epg", "iou")):
            _panel(axes[i, j], sub, y, f"{DATASET_NAMES.get(ds, ds)}: {y} vs F1")
    wb = rows[rows["dataset"] == "waterbirds"]
    _waterbirds_panel(axes[-1, 0], wb)
    return fig, axes, wb


@register("ext.boxes_vs_masks", kind="figure", groups=["ext-masks"], protocol=BOXES_VS_MASKS)
def boxes_vs_masks(ctx: RenderContext):
    rows = _rows(ctx.metrics("ext-masks"))
    datasets = _datasets(rows)
    if not datasets:
        raise MissingResults("ext-masks has no VOC / COCO runs with test rows")
    fig, axes, wb = _dataset_grid(rows, datasets)
    for ax in axes[-1, 1:]:
        ax.set_axis_off()
    _legend(fig)
    fig.subplots_adjust(top=0.9, hspace=0.55, wspace=0.3)
    return fig


@register("ext.annotation_free", kind="figure", groups=["ext-annotation-free"], protocol=ANNOTATION_FREE)
def annotation_free(ctx: RenderContext):
    rows = _rows(ctx.metrics("ext-annotation-free"))
    datasets = _datasets(rows)
    fig, axes, wb = _dataset_grid(rows, datasets)
    _panel(axes[-1, 1], wb, "epg", "Waterbirds: EPG vs F1")
    _panel(axes[-1, 2], wb, "onobj_epg", "Waterbirds: on-object EPG vs F1")
    _legend(fig)
    fig.subplots_adjust(top=0.9, hspace=0.55, wspace=0.3)
    return fig


# ---- claims -------------------------------------------------------------------------------------
def _rep(rows: pd.DataFrame, **want: Any) -> pd.Series | None:
    sel = rows[rows["rep"]]
    for k, v in want.items():
        sel = sel[sel[k] == v]
    return None if sel.empty else sel.iloc[0]


def _verdict(holds: bool | None, *values: float) -> str:
    if holds is None:
        return "not measured"
    if all(v == 0 for v in values):  # e.g. every model fails the worst group: nothing to compare
        return "not informative (all 0)"
    return "holds" if holds else "does not hold"


def _pts(r: pd.Series | None, col: str) -> float:
    v = None if r is None else r.get(col)
    return float("nan") if v is None or pd.isna(v) else float(v) * PCT


def mask_claims(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Boxes vs masks per configuration: holds when box guidance's on-object EPG (Waterbirds: worst-group
    accuracy) is at most `EQUAL_WITHIN` points below mask guidance's."""
    out = []
    keys = ["dataset", "model_kind", "loss", "annotation_fraction"]
    guided_rows = rows[rows["source"].isin(["boxes", "segmentation"])]
    for key, g in guided_rows.groupby(keys, sort=True):
        box, seg = _rep(g, source="boxes"), _rep(g, source="segmentation")
        if box is None or seg is None:
            continue
        metric = "worst_group_acc" if key[0] == "waterbirds" else "onobj_epg"
        b, s = _pts(box, metric), _pts(seg, metric)
        holds = bool(b >= s - EQUAL_WITHIN) if not (np.isnan(b) or np.isnan(s)) else None
        label = _label(box)
        out.append({
            "claim": f"boxes guide as well as masks ({DATASET_NAMES.get(key[0], key[0])}, {label})",
            "metric": metric, "boxes": b, "masks": s,
            "measured": (f"EPG {_pts(box, 'epg'):.1f} vs {_pts(seg, 'epg'):.1f}, IoU {_pts(box, 'iou'):.1f} vs "
                         f"{_pts(seg, 'iou'):.1f}, F1 {_pts(box, 'f1'):.1f} vs {_pts(seg, 'f1'):.1f}"),
            "verdict": _verdict(holds, b, s),
        })
    return out


def free_claims(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Annotation-free guidance of the Vanilla model against its unguided and box-guided versions, on EPG
    (Waterbirds: also worst-group accuracy)."""
    out = []
    for ds, g in rows[rows["model_kind"] == "vanilla"].groupby("dataset", sort=True):
        base, box = _rep(g, source="unguided"), _rep(g, source="boxes")
        name = DATASET_NAMES.get(ds, ds)
        for metric in ("epg", "worst_group_acc") if ds == "waterbirds" else ("epg",):
            for src in ("teacher", "aim"):
                r = _rep(g, source=src)
                if r is None or base is None:
                    continue
                v, b0, bb = _pts(r, metric), _pts(base, metric), _pts(box, metric)
                holds = None if np.isnan(v) or np.isnan(b0) else bool(v >= b0 + IMPROVES_BY)
                out.append({"claim": f"{src} guidance without annotations improves {metric} over unguided ({name})",
                            "metric": metric, "boxes": bb, "masks": v,
                            "measured": f"{src} {v:.1f} vs unguided {b0:.1f} vs boxes {bb:.1f}; "
                                        f"F1 {_pts(r, 'f1'):.1f} vs {_pts(base, 'f1'):.1f}",
                            "verdict": _verdict(holds, v, b0)})
                if box is not None:
                    close = None if np.isnan(v) or np.isnan(bb) else bool(v >= bb - EQUAL_WITHIN)
                    out.append({"claim": f"{src} guidance comes within {EQUAL_WITHIN:g} points of box guidance on "
                                         f"{metric} ({name})",
                                "metric": metric, "boxes": bb, "masks": v, "measured": f"{src} {v:.1f} vs boxes {bb:.1f}",
                                "verdict": _verdict(close, v, bb)})
    return out


@register("ext.guidance_claims", kind="table", groups=["ext-masks", "ext-annotation-free"],
          protocol=GUIDANCE_CLAIMS)
def claims(ctx: RenderContext) -> Table:
    items = mask_claims(_rows(ctx.metrics("ext-masks"))) + free_claims(_rows(ctx.metrics("ext-annotation-free")))
    if not items:
        raise MissingResults("no pair of box- and mask-guided (or unguided and annotation-free) runs to compare")
    frame = pd.DataFrame(items).rename(columns={"boxes": "boxes / reference (%)", "masks": "other signal (%)"})
    held = int((frame["verdict"] == "holds").sum())
    notes = [f"measured on {ctx.profile} runs: {held} of {len(frame)} claims hold",
             f"'as well as': within {EQUAL_WITHIN:g} points on on-object EPG (Waterbirds: worst-group accuracy); "
             f"'improves': by >= {IMPROVES_BY:g} points"]
    return Table(frame, notes, title="Guidance beyond boxes: claims as measured")
