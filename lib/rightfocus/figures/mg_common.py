"""Helpers shared by the model-guidance renderers: picking configurations out of the results, the
checkpoints the figures show (Rao et al. 2023, Sec. 4 / Fig. 4: the 3-D validation front pooled over
lambda, plotted with its TEST metrics), the baseline reference point, the representative model
(supplement D.1.1) and the Pareto panels of Figs. 5-8, 10, 12, B1-B9, X1-X11.

Metrics are stored as fractions; plots and tables show percent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from rightfocus import pareto
from rightfocus.runs.config import NATIVE_METHOD
from rightfocus.figures import MissingResults, RenderContext, style
from rightfocus.models.kinds import native_methods

PCT = 100.0
MODEL_KINDS = tuple(native_methods())  # model guidance's kinds: those with a native method
#: the paper's losses in its figures' order (Figs. 5-8; a subset of the registered `rightfocus.losses.LOSSES`)
LOSSES = ("energy", "l1", "ppce", "rrr")
#: the attribution each model family is guided with in the main results (Sec. 4): its native method
#: (`rightfocus.models.kinds.MODEL_KINDS`, read at every use)
MAIN_METHOD = NATIVE_METHOD
#: columns identifying the model family a baseline belongs to
FAMILY_KEYS = ("dataset", "task", "model_kind", "arch")

Filter = Mapping[str, Any]


def match(df: pd.DataFrame, filters: Filter | None = None) -> pd.DataFrame:
    """Rows of `df` matching every filter: a scalar (equality, None matches missing), a
    list/tuple/set (membership) or a callable(series) -> bool mask. Unknown columns match nothing."""
    if not filters:
        return df
    mask = pd.Series(True, index=df.index)
    for col, want in filters.items():
        if col not in df.columns:
            return df.iloc[0:0]
        s = df[col]
        if callable(want):
            mask &= want(s).astype(bool)
        elif isinstance(want, (list, tuple, set, frozenset)):
            mask &= s.isin(list(want))
        elif want is None:
            mask &= s.isna()
        else:
            mask &= s == want
    return df[mask]


def not_gradcam(s: pd.Series) -> pd.Series:
    """Filter for the main results: guided with the model's own attribution, not with a method shown for
    every model kind (GradCAM, Sec. 5.2)."""
    from rightfocus.attributions.methods import ATTRIBUTION_METHODS

    return ~s.isin([n for n, m in ATTRIBUTION_METHODS.items() if m.every_kind])


def guided(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["is_baseline"].astype(bool)]


def selected_test_rows(cfg_rows: pd.DataFrame, eval_tap: str | None = None,
                       eval_method: str | None = None) -> pd.DataFrame:
    """TEST rows of the checkpoints on the configuration's validation front in (F1, EPG, IoU),
    pooled over lambda and epochs (`pareto.pooled_fronts` at the guided tap), evaluated at
    `eval_tap`/`eval_method` (default: the guided tap/method; Fig. 8 evaluates at the input)."""
    g = guided(cfg_rows)
    if g.empty:
        return g
    front = pareto.pooled_fronts(g)
    if front.empty:
        return front
    keys = front[["run_id", "epoch"]].drop_duplicates()
    test = g[(g["split"] == "test")]
    test = test[test["tap"] == (test["config_tap"] if eval_tap is None else eval_tap)]
    test = test[test["method"] == (test["config_method"] if eval_method is None else eval_method)]
    return test.merge(keys, on=["run_id", "epoch"], how="inner")


def baseline_rows(group_df: pd.DataFrame, cfg_rows: pd.DataFrame, tap: str, method: str,
                  split: str = "test") -> pd.DataFrame:
    """The baseline's rows at (`tap`, `method`) for the model family of `cfg_rows`: epoch 0 of the
    guided runs (the checkpoint they start from) when recorded, else the selected checkpoint of the
    family's baseline runs."""
    rows = cfg_rows[(cfg_rows["epoch"] == 0) & (cfg_rows["split"] == split) & (cfg_rows["tap"] == tap)
                    & (cfg_rows["method"] == method)]
    if not rows.empty:
        return rows
    fam = {k: cfg_rows[k].iloc[0] for k in FAMILY_KEYS if k in cfg_rows.columns and not cfg_rows.empty}
    base = group_df[group_df["is_baseline"].astype(bool)]
    base = match(base, {k: (v if not (isinstance(v, float) and np.isnan(v)) else None) for k, v in fam.items()})
    base = base[(base["split"] == split) & (base["tap"] == tap) & (base["method"] == method)]
    if "selected" in base.columns and base["selected"].any():
        return base[base["selected"].astype(bool)]
    return base[base["epoch"] == base.groupby("run_id")["epoch"].transform("max")] if not base.empty else base


def baseline_point(group_df: pd.DataFrame, cfg_rows: pd.DataFrame, x: str, y: str, tap: str, method: str,
                   split: str = "test") -> tuple[float, float] | None:
    """Mean (x, y) of `baseline_rows`, or None when the baseline was not evaluated there."""
    rows = baseline_rows(group_df, cfg_rows, tap, method, split)
    if rows.empty or rows[[x, y]].isna().all().any():
        return None
    return float(rows[x].mean()), float(rows[y].mean())


def front_2d(points: np.ndarray) -> np.ndarray:
    """Indices of the 2-D non-dominated points (both maximised), sorted by x: the drawn front line."""
    if len(points) == 0:
        return np.zeros(0, dtype=int)
    idx = np.flatnonzero(pareto.pareto_front(points, bins=None))
    return idx[np.argsort(points[idx, 0])]


def representative_checkpoint(group_df: pd.DataFrame, cfg_rows: pd.DataFrame) -> tuple[str, int]:
    """(run_id, epoch) of the representative model of a configuration: highest validation EPG with
    at most 5 p.p. F1 drop from the baseline, on the front pooled over lambda (D.1.1)."""
    g = guided(cfg_rows)
    front = pareto.pooled_fronts(g)
    if front.empty:
        raise MissingResults("no validation front for " + describe(cfg_rows))
    tap, method = front["config_tap"].iloc[0], front["config_method"].iloc[0]
    base = baseline_rows(group_df, g, tap, method, split="val")
    base_f1 = float(base["f1"].mean()) if not base.empty else float(front["f1"].max())
    kept = front[front["checkpoint"].notna()] if "checkpoint" in front.columns else front
    row = pareto.representative(kept if not kept.empty else front, base_f1)
    return str(row["run_id"]), int(row["epoch"])


def describe(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "(no rows)"
    keys = [k for k in ("dataset", "model_kind", "arch", "config_method", "config_tap", "loss") if k in rows.columns]
    return "/".join(str(rows[k].iloc[0]) for k in keys)


# ---- Pareto panels ------------------------------------------------------------------------------

def hue_style(hue: str, value: Any, order: Sequence[Any]) -> dict[str, Any]:
    """Marker/colour/label of one hue value: losses use the paper's markers, other hues
    (dilation, annotation fraction, tap) a colour-blind-safe sequence."""
    if hue == "loss":
        return style.loss_style(value)
    if hue == "config_tap":  # one fixed style per tap across panels and figures
        order = tuple(style.TAP_LABELS)
    i = list(order).index(value) if value in order else 0
    label = {"dilation": lambda v: f"{v * 100:g} % dilation",
             "annotation_fraction": lambda v: f"{v * 100:g} % annotated",
             "config_tap": lambda v: f"@{style.TAP_LABELS.get(v, v)}"}.get(hue, str)(value)
    return {"marker": "os^Dpv*"[i % 7], "color": style.SEQUENTIAL[i % len(style.SEQUENTIAL)], "label": label}


def draw_pareto_panel(ax: Any, group_df: pd.DataFrame, cell: Filter, x: str = "f1", y: str = "epg",
                      hue: str = "loss", hue_order: Sequence[Any] | None = None, eval_tap: str | None = None,
                      shade: bool = True) -> int:
    """One panel: per hue value, the selected checkpoints' test points and their 2-D front, the
    baseline as a cross, and the Fig. 5 regions. Returns the number of configurations drawn."""
    rows = match(guided(group_df), cell)
    values = [v for v in (hue_order or sorted(rows[hue].dropna().unique(), key=str)) if (rows[hue] == v).any()]
    drawn, base = 0, None
    for v in values:
        cfg = rows[rows[hue] == v]
        pts = selected_test_rows(cfg, eval_tap=eval_tap)
        pts = pts.dropna(subset=[x, y])
        st = hue_style(hue, v, hue_order or values)
        if pts.empty:
            continue
        xy = pts[[x, y]].to_numpy(dtype=float) * PCT
        ax.scatter(xy[:, 0], xy[:, 1], marker=st["marker"], color=st["color"], s=14, alpha=0.9,
                   edgecolor="black", linewidth=0.3, label=st["label"], zorder=4)
        line = xy[front_2d(xy)]
        ax.plot(line[:, 0], line[:, 1], color=st["color"], linewidth=0.9, zorder=3)
        drawn += 1
        if base is None:
            tap = eval_tap or str(cfg["config_tap"].iloc[0])
            base = baseline_point(group_df, cfg, x, y, tap, str(cfg["config_method"].iloc[0]))
    if base is not None:
        b = (base[0] * PCT, base[1] * PCT)
        style.draw_baseline(ax, *b)
        if shade:
            ax.margins(0.15)
            style.shade_baseline_regions(ax, *b)
    if drawn == 0:
        ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="grey")
    ax.set_xlabel(style.METRIC_LABELS.get(x, x))
    ax.set_ylabel(style.METRIC_LABELS.get(y, y))
    return drawn


def pareto_grid(ctx: RenderContext, group: str, rows: Sequence[tuple[str, Filter]],
                cols: Sequence[tuple[str, Filter]], x: str = "f1", y: str | Sequence[str] = "epg",
                hue: str = "loss", hue_order: Sequence[Any] | None = None, eval_tap: str | None = None,
                title: str = "", base_filter: Filter | None = None, also: Sequence[str] = ()) -> Any:
    """A grid of Pareto panels (rows x cols of config filters). `y` may be one metric per row;
    `also` adds other groups' runs (e.g. voc-main's final-layer runs beside voc-gradcam's)."""
    frames = [ctx.metrics(group)] + [ctx.metrics(g) for g in also if ctx.has_group(g)]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(frames) > 1:  # runs shared by groups appear once
        df = df.drop_duplicates(subset=["run_id", "epoch", "split", "tap", "method"])
    df = match(df, base_filter)
    ys = [y] * len(rows) if isinstance(y, str) else list(y)
    fig, axes = style.subplots(len(rows), len(cols))
    total = 0
    for i, (rlabel, rfilt) in enumerate(rows):
        for j, (clabel, cfilt) in enumerate(cols):
            ax = axes[i, j]
            total += draw_pareto_panel(ax, df, {**rfilt, **cfilt}, x=x, y=ys[i], hue=hue,
                                       hue_order=hue_order, eval_tap=eval_tap)
            ax.set_title(f"{clabel} | {rlabel}" if rlabel else clabel)
    if total == 0:
        raise MissingResults(f"group {group} in {ctx.results / ctx.profile} has none of the runs {ctx.fig_id} "
                             f"shows ({title or 'guided runs'}); run `make mg PROFILE={ctx.profile}`")
    style.add_legend(fig)
    if title:
        fig.suptitle(title, y=1.06, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def model_columns(kinds: Sequence[str] = MODEL_KINDS) -> list[tuple[str, Filter]]:
    """Columns Vanilla / X-DNN / B-cos, each with its main attribution (not GradCAM)."""
    return [(f"{style.MODEL_LABELS[k]} ({MAIN_METHOD[k]})", {"model_kind": k, "config_method": not_gradcam})
            for k in kinds]


def tap_rows(taps: Sequence[str]) -> list[tuple[str, Filter]]:
    return [(style.TAP_LABELS[t], {"config_tap": t}) for t in taps]


def values_in(df: pd.DataFrame, col: str, filt: Filter | None = None) -> list[Any]:
    """Sorted distinct non-null values of a column among the guided rows matching `filt`."""
    rows = match(guided(df), filt)
    return sorted(rows[col].dropna().unique().tolist()) if col in rows.columns else []


def require(df: pd.DataFrame, what: str, ctx: RenderContext) -> pd.DataFrame:
    if df.empty:
        raise MissingResults(f"no {what} in {ctx.results / ctx.profile} for {ctx.fig_id}; "
                             f"run `make mg PROFILE={ctx.profile}`")
    return df




def tap_speedups(ctx: RenderContext, guided_rows: pd.DataFrame) -> dict[str, float]:
    """Measured training speed-up per tap: mean epoch time of the runs guided at the input / at the tap.

    Wall-clock timings change from one training to the next (machine load), so no tracked output shows
    them; they are written to the untracked ``<results>/<profile>/timings/<id>.csv`` (results/ is not in
    git) and returned."""
    times = guided_rows[guided_rows["epoch"] >= 1].groupby("config_tap")["epoch_time_s"].mean()
    if "input" not in times.index:
        return {}
    out = {str(t): float(times["input"] / times[t]) for t in times.index}
    path = Path(ctx.results) / ctx.profile / "timings" / f"{ctx.fig_id or 'timings'}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"tap": list(out), "mean_epoch_time_s": [float(times[t]) for t in out],
                  "speedup_vs_input": list(out.values())}).to_csv(path, index=False)
    return out


#: the dated step-time records `benchmarks/bench_layers.py --record` writes (tracked, under the project root)
LAYER_SPEEDUP_RECORDS = "benchmarks/recorded/layer_speedup_*.json"


def layer_speedup_record(root: str | Path | None = None) -> dict[str, Any] | None:
    """The newest step-time record per tap (Fig. 8's speed-up, R9), with its ``path``; None when there is
    none. Measured side by side in one process (`benchmarks/bench_layers.py`), not from the runs' wall
    clocks, so tracked outputs drawn from it stay the same from one rendering to the next."""
    import json

    from rightfocus import project

    base = Path(root) if root is not None else project.project_root()
    records = []
    for path in sorted(base.glob(LAYER_SPEEDUP_RECORDS)):
        data = json.loads(path.read_text())
        records.append((str(data.get("date", "")), data.get("device_kind") == "cuda", path.name, data))
    if not records:
        return None
    *_, name, data = max(records, key=lambda r: r[:3])
    return {**data, "path": f"benchmarks/recorded/{name}"}


# ---- protocol cards (`rightfocus.protocol`): the paper profile's recipe per group ---------------

from rightfocus.protocol import INIT_BASELINE, INIT_IMAGENET, Protocol, Recipe  # noqa: E402

MG_CROP = "whole image resized to 224x224, aspect ratio not kept (train and test)"
WB_CROP = "train: random crop and flip; val/test: resized to 224x224"
#: threshold and checkpoint selection of the guided VOC/COCO runs (Sec. 3.3 and Sec. 4)
MG_SELECTION = ("IoU threshold selected on val (Sec. 3.3); checkpoints: the val Pareto front over (F1, EPG, IoU), "
                "pooled over lambda and epochs (Sec. 4), plotted with their test metrics")
BASELINE_SELECTION = "checkpoint with the best val F1, best of the lr sweep (D.1.1)"
WB_SELECTION = "checkpoint with the best accuracy on the modified val split (G1 and G4 only, D.1.2)"
D11_BASELINE = ("We train starting from models pre-trained on ImageNet [S13]. We fine-tune with fixed learning rates "
                "in {10^-3, 10^-4, 10^-5} using an Adam optimizer [S6] and select the checkpoint with the best "
                "validation F1-score.")
D11_GUIDED = ("We train the models jointly optimized for classification and localization (Eq. (1)) by fine-tuning "
              "the baseline models. We use a fixed learning rate of 10^-4 and a batch size of 64.")
D12 = ("We train starting from models pre-trained on ImageNet [S13]. We fine-tune with fixed learning rate of "
       "10^-5 with lambda_loc of 5x10^-2 (...) using an Adam optimizer [S6]. We train for 350 epochs")


def mg_recipes(group: str, dataset: str, base_epochs: int, guided_epochs: int) -> tuple[Recipe, ...]:
    """A VOC/COCO group's two recipes: the baselines (lr sweep from ImageNet) and the guided runs."""
    lrs = (1e-3, 1e-4, 1e-5)
    return (
        Recipe(group, "baselines", {"guided": False, "dataset": dataset}, INIT_IMAGENET, (base_epochs,), lrs, 64,
               (224,), MG_CROP, BASELINE_SELECTION, D11_BASELINE, "Supp. D.1.1"),
        Recipe(group, "guided runs", {"guided": True, "dataset": dataset}, INIT_BASELINE, (guided_epochs,), (1e-4,),
               64, (224,), MG_CROP, MG_SELECTION, D11_GUIDED, "Supp. D.1.1"),
    )


#: group -> the recipes of its runs in the paper profile (`experiments.grids`, paper settings)
MG_RECIPES: dict[str, tuple[Recipe, ...]] = {
    **{g: mg_recipes(g, "voc2007", 300, 50)
       for g in ("voc-main", "voc-layers", "voc-dilation", "voc-limited", "voc-gradcam", "voc-backbones")},
    **{g: mg_recipes(g, "coco2014", 60, 10) for g in ("coco-main", "coco-gradcam", "coco-dilation")},
    "waterbirds": (
        Recipe("waterbirds", "baselines", {"guided": False, "dataset": "waterbirds"}, INIT_IMAGENET, (350,), (1e-5,),
               64, (224,), WB_CROP, WB_SELECTION, D12, "Supp. D.1.2"),
        Recipe("waterbirds", "guided runs", {"guided": True, "dataset": "waterbirds"}, INIT_IMAGENET, (350,), (1e-5,),
               64, (224,), WB_CROP, WB_SELECTION, D12, "Supp. D.1.2"),
    ),
}


def mg_protocol(section: str, follows: str, *groups: str, optional: Sequence[str] = (),
                notes: Sequence[str] = ()) -> Protocol:
    """A model-guidance id's protocol: the recipes of `groups` (and of the `optional` ones it reads when
    present), the paper sentence it follows and where."""
    recipes = tuple(r for g in (*groups, *optional) for r in MG_RECIPES[g])
    return Protocol(follows, section, recipes, tuple(optional), tuple(notes))
