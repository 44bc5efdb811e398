"""Beyond the papers: do their conclusions hold under other explanation metrics, and do the
attribution methods pass the randomisation sanity check?

* ``ext.metric_agreement`` (table) and ``ext.metric_agreement_fig`` (small multiples): for each
  ranking the papers report from EPG (MG: losses per model and tap, taps per model and loss, model
  families per loss and tap; AIM: AIM against its baseline), the same ranking under every metric the
  runs' rows hold (`rightfocus.metrics.registry`): Spearman's rank correlation with EPG's ranking
  (mean over the cells) and how often the metric's best item is EPG's best. Read from the runs'
  stored test rows only.
* ``ext.sanity`` (figure): the cascading model-parameter randomisation check (Adebayo et al. 2018;
  `rightfocus.metrics.sanity`) of each model family's selected baseline checkpoint in ``voc-main``
  and its attribution methods, on the first test images with boxes, with the deletion / insertion
  AUCs of the same maps (`rightfocus.metrics.faithfulness`). It loads checkpoints and
  computes maps (like the qualitative figures); it never trains.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from rightfocus.figures import MissingResults, RenderContext, Table, register
from rightfocus.figures.inventory import EXT_METRIC_IDS
from rightfocus.figures.aim_common import AIM_RECIPES
from rightfocus.figures.mg_common import MG_RECIPES, guided, selected_test_rows
from rightfocus.protocol import Protocol

#: the papers' conclusions this suite re-tests (MG Sec. 5.1 / 5.2, AIM Sec. 6.2)
_AGREEMENT = Protocol(
    "In short, we find that the Energy loss works best for improving the EPG metric, whereas the L1 loss yields the "
    "highest gains in terms of IoU",
    "MG Sec. 5 and AIM Sec. 6.2 (their rankings re-scored under other localisation metrics: beyond both papers)",
    (*MG_RECIPES["voc-main"], *MG_RECIPES["voc-layers"], *AIM_RECIPES["aim-main"]),
    optional=("voc-layers", "aim-main"),
    notes=("metrics: the registered suite (`rightfocus.metrics.registry`): Pointing Game, Attribution Localisation, "
           "Relevance Mass / Rank Accuracy, AUC (paper profile: also Top-K), EPG and IoU, on the runs' test rows "
           "of their selected checkpoints", "agreement: Spearman rank correlation with EPG's ranking per cell"))
_SANITY = Protocol(
    "an explanation that stays the same when the model's parameters are randomised cannot explain the model",
    "Adebayo et al. 2018, cascading model-parameter randomisation (a check beyond both papers)",
    MG_RECIPES["voc-main"],
    notes=("maps of each attribution method of the selected voc-main checkpoints, layers randomised from the "
           "top down; similarity: Spearman rank correlation with the original maps; beside them the deletion / "
           "insertion AUCs of the trained model's maps",))

#: MG rankings: (label, group, cell columns, item column)
MG_RANKINGS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("MG losses (per model, tap)", "voc-main", ("model_kind", "config_tap", "config_method"), "loss"),
    ("MG taps (per model, loss)", "voc-layers", ("model_kind", "config_method", "loss"), "config_tap"),
    ("MG models (per loss, tap)", "voc-main", ("loss", "config_tap"), "model_kind"),
)
AIM_GROUP = "aim-main"
def sanity_methods() -> dict[str, tuple[tuple[str, str], ...]]:
    """Model family -> (method, tap) pairs the sanity check explains, from the method registry
    (`rightfocus.attributions.methods.evaluation_methods`): the registered differentiable methods
    native to the family, then those shown for every family, each at its ``eval_tap`` (built in:
    the native method at the input, GradCAM at the final tap)."""
    from rightfocus.attributions.methods import evaluation_methods, native_kinds

    return {kind: evaluation_methods(kind) for kind in native_kinds()}


def __getattr__(name: str) -> Any:
    if name == "SANITY_METHODS":  # read from the registry at every use
        return sanity_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SANITY_IMAGES = 8
#: deletion / insertion steps per image (pixels per step = pixels / steps)
FAITHFULNESS_STEPS = 16


def _metric_columns(df: pd.DataFrame) -> list[str]:
    from rightfocus.metrics import MAP_METRICS

    return [m for m in MAP_METRICS if m in df.columns and df[m].notna().any()]


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b)[0])


def mg_cell_means(ctx: RenderContext, group: str, cells: tuple[str, ...], item: str) -> pd.DataFrame:
    """Mean test value of every metric per (cell, item) over the configuration's selected
    checkpoints (`selected_test_rows`, the rows the paper's figures plot)."""
    df = ctx.metrics(group)
    metrics = _metric_columns(df)
    out = []
    g = guided(df)
    keys = list(dict.fromkeys([*cells, item, "arch", "lam", "annotation_fraction", "dilation"]))
    keys = [k for k in keys if k in g.columns]
    for key, rows in g.groupby(keys, dropna=False, sort=True):
        test = selected_test_rows(rows)
        if test.empty:
            continue
        rec = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        rec.update({m: float(test[m].mean()) for m in metrics})
        out.append(rec)
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    # lambda / fraction / dilation pooled like the paper pools lambda
    return frame.groupby([*cells, item], dropna=False, sort=True)[metrics].mean().reset_index()


def _ranking_rows(label: str, means: pd.DataFrame, cells: tuple[str, ...], item: str) -> list[dict[str, Any]]:
    metrics = [c for c in means.columns if c not in (*cells, item)]
    rows = []
    for m in metrics:
        rhos, same, winners = [], 0, []
        n_cells = 0
        for _, cell in means.groupby(list(cells), dropna=False, sort=True):
            cell = cell.dropna(subset=["epg", m])
            if len(cell) < 2:
                continue
            n_cells += 1
            rhos.append(_spearman(cell["epg"].tolist(), cell[m].tolist()))
            best_epg = cell.loc[cell["epg"].idxmax(), item]
            best_m = cell.loc[cell[m].idxmax(), item]
            winners.append(str(best_m))
            same += int(best_m == best_epg)
        if not n_cells:
            continue
        top = pd.Series(winners).value_counts()
        rows.append({"ranking": label, "metric": m, "cells": n_cells,
                     "spearman_vs_epg": float(np.nanmean(rhos)) if np.isfinite(rhos).any() else float("nan"),
                     "same_best_as_epg": f"{same}/{n_cells}",
                     "best_under_metric": f"{top.index[0]} ({int(top.iloc[0])}/{n_cells})"})
    return rows


def aim_pairs(ctx: RenderContext) -> pd.DataFrame:
    """AIM minus its baseline per (dataset, architecture) and metric, on the GradCAM test rows."""
    from rightfocus.figures.aim_common import runs_table

    runs = runs_table(ctx, AIM_GROUP)[["run_id", "dataset", "arch", "aim"]]
    df = ctx.metrics(AIM_GROUP)
    test = df[(df["split"] == "test") & (df["method"] == "gradcam")]
    metrics = _metric_columns(test)
    runs = runs.join(test.groupby("run_id")[metrics].last(), on="run_id")
    out = []
    for (dataset, arch), r in runs.groupby(["dataset", "arch"], sort=True):
        aim, base = r[r["aim"].astype(bool)], r[~r["aim"].astype(bool)]
        if aim.empty or base.empty:
            continue
        out.append({"dataset": dataset, "arch": arch, **{m: float(aim[m].mean() - base[m].mean()) for m in metrics}})
    return pd.DataFrame(out)


def agreement_frame(ctx: RenderContext) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(the table, {ranking label: its per-cell means}) from whichever groups have results (computed
    once per rendering: the table and the figure share it)."""
    if "ext.agreement" not in ctx._cache:
        ctx._cache["ext.agreement"] = _agreement_frame(ctx)
    return ctx._cache["ext.agreement"]


def _agreement_frame(ctx: RenderContext) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    rows: list[dict[str, Any]] = []
    means: dict[str, pd.DataFrame] = {}
    for label, group, cells, item in MG_RANKINGS:
        if not ctx.has_group(group):
            continue
        m = mg_cell_means(ctx, group, cells, item)
        if m.empty:
            continue
        means[label] = m
        rows += _ranking_rows(label, m, cells, item)
    if ctx.has_group(AIM_GROUP):
        pairs = aim_pairs(ctx)
        if not pairs.empty:
            means["AIM vs baseline"] = pairs
            for m in [c for c in pairs.columns if c not in ("dataset", "arch")]:
                d = pairs[m].dropna()
                agree = int(((d > 0) == (pairs.loc[d.index, "epg"] > 0)).sum())
                rows.append({"ranking": "AIM vs baseline (per dataset, arch)", "metric": m, "cells": len(d),
                             "spearman_vs_epg": float("nan"), "same_best_as_epg": f"{agree}/{len(d)}",
                             "best_under_metric": f"AIM ({int((d > 0).sum())}/{len(d)})"})
    if not rows:
        raise MissingResults("no ranking has two items with test rows yet - run `make mg` and `make aim`")
    return pd.DataFrame(rows), means


@register("ext.metric_agreement", *EXT_METRIC_IDS["ext.metric_agreement"], protocol=_AGREEMENT)
def metric_agreement(ctx: RenderContext) -> Table:
    frame, _ = agreement_frame(ctx)
    frame = frame.assign(spearman_vs_epg=frame["spearman_vs_epg"].round(3))
    held = frame[frame["metric"] != "epg"]
    notes = ["Each row: one ranking the papers report from EPG, recomputed under `metric` on the same "
             "runs (test rows of the selected checkpoints). spearman_vs_epg: mean rank correlation with "
             "EPG's ranking over the cells (NaN: fewer than two distinct values); same_best_as_epg: cells "
             "whose best item is EPG's best; AIM rows: pairs where AIM - baseline has EPG's sign.",
             f"Measured here: the metric's best item equals EPG's in "
             f"{_ratio(held['same_best_as_epg'])} of the (ranking, metric, cell) cases."]
    return Table(frame, notes, title="Do the papers' EPG rankings hold under other localisation metrics?")


def _ratio(col: pd.Series) -> str:
    nums = [tuple(map(int, s.split("/"))) for s in col]
    return f"{sum(a for a, _ in nums)}/{sum(b for _, b in nums)}"


@register("ext.metric_agreement_fig", *EXT_METRIC_IDS["ext.metric_agreement_fig"], protocol=_AGREEMENT)
def metric_agreement_fig(ctx: RenderContext) -> Any:
    import matplotlib.pyplot as plt

    from rightfocus.metrics.registry import labels

    _, means = agreement_frame(ctx)
    metrics = sorted({c for m in means.values() for c in m.columns} & set(labels()),
                     key=list(labels()).index)
    fig, axes = plt.subplots(len(means), len(metrics), figsize=(1.9 * len(metrics), 1.9 * len(means)),
                             squeeze=False)
    for r, (label, frame) in enumerate(means.items()):
        for c, m in enumerate(metrics):
            ax = axes[r, c]
            if m not in frame.columns:
                ax.axis("off")
                continue
            if label == "AIM vs baseline":
                ax.bar(range(len(frame)), frame[m].to_numpy(), color="C0")
                ax.axhline(0, color="k", lw=0.5)
                ax.set_xticks(range(len(frame)), [f"{d}\n{a}" for d, a in zip(frame["dataset"], frame["arch"])],
                              fontsize=5)
            else:
                _, _, cells, item = next(x for x in MG_RANKINGS if x[0] == label)
                items = sorted(frame[item].dropna().unique().tolist())
                for i, (_, cell) in enumerate(frame.groupby(list(cells), dropna=False, sort=True)):
                    y = [cell.loc[cell[item] == it, m].mean() if (cell[item] == it).any() else np.nan
                         for it in items]
                    ax.plot(range(len(items)), y, marker="o", ms=2, lw=0.8, color=f"C{i % 10}")
                ax.set_xticks(range(len(items)), [str(i) for i in items], fontsize=5, rotation=45)
            ax.tick_params(labelsize=5)
            if r == 0:
                ax.set_title(labels()[m], fontsize=6)
            if c == 0:
                ax.set_ylabel(label if label != "AIM vs baseline" else "AIM - baseline", fontsize=6)
    fig.suptitle("Each ranking under every metric (lines: cells; AIM: AIM minus baseline)", fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- sanity


def sanity_curves(ctx: RenderContext, group: str = "voc-main") -> dict[str, dict[str, list[float]]]:
    """{model kind: {"method@tap (del D, ins I)": mean similarity to the trained model's maps, original
    first, then after each further layer is randomised}} for each family's baseline in `group`; D and
    I are the mean deletion / insertion AUCs on [0, 1] (`rightfocus.metrics.faithfulness`) of the
    trained model's maps."""
    import torch

    from rightfocus.attributions import attribute
    from rightfocus.data import encode
    from rightfocus.figures.mg_qualitative import baseline_model, target_class, test_samples
    from rightfocus.metrics.faithfulness import deletion_insertion
    from rightfocus.metrics.sanity import cascading_randomisation

    out: dict[str, dict[str, list[float]]] = {}
    for kind, pairs in sanity_methods().items():
        loaded = baseline_model(ctx, group, {"model_kind": kind})
        if loaded is None:
            continue
        model, config = loaded
        samples = test_samples(ctx, config, SANITY_IMAGES)
        x = encode(torch.stack([s["image"] for s in samples]), getattr(model, "input_encoding", "imagenet"))
        k = torch.tensor([target_class(s) for s in samples])
        out[kind] = {}
        for method, tap in pairs:
            def explain(m: Any, xx: Any, kk: Any, method: str = method, tap: str = tap) -> Any:
                return attribute(m, xx, kk, method, layer=tap)

            torch.manual_seed(0)
            sims = cascading_randomisation(model, x, k, explain)
            faith = deletion_insertion(model, x, k, explain(model, x, k).detach(),
                                       pixels_per_step=max(1, x.shape[-1] * x.shape[-2] // FAITHFULNESS_STEPS))
            name = f"{method}@{tap} (del {float(faith['deletion'].mean()):.2f}, ins {float(faith['insertion'].mean()):.2f})"
            out[kind][name] = [float(v.mean()) for v in sims.values()]
    if not out:
        raise MissingResults(f"no baseline checkpoint in {group} - run `make mg PROFILE={ctx.profile}`")
    return out


@register("ext.sanity", *EXT_METRIC_IDS["ext.sanity"], protocol=_SANITY)
def sanity(ctx: RenderContext) -> Any:
    import matplotlib.pyplot as plt

    curves = sanity_curves(ctx)
    fig, axes = plt.subplots(1, len(curves), figsize=(2.6 * len(curves), 2.4), squeeze=False)
    finals = []
    for ax, (kind, per_method) in zip(axes[0], curves.items()):
        for i, (name, ys) in enumerate(per_method.items()):
            ax.plot(range(len(ys)), ys, marker="o", ms=2, label=name, color=f"C{i}")
            finals.append(f"{kind} {name.split(' ')[0]} {ys[-1]:.2f}")
        ax.set_title(kind, fontsize=8)
        ax.set_xlabel("layers randomised (output first)", fontsize=7)
        ax.set_ylim(-1.05, 1.05)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel("Spearman similarity to\ntrained model's |map|", fontsize=7)
    fig.suptitle("Cascading parameter randomisation (low = the maps depend on the weights; legend: "
                 "deletion AUC, low = faithful, insertion AUC, high = faithful). "
                 "Measured, all layers randomised: " + "; ".join(finals), fontsize=6, wrap=True)
    fig.tight_layout()
    return fig
