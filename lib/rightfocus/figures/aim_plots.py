"""AIM quantitative figures (Alshami et al. 2025): Fig. 1 (localisation on Waterbirds), Fig. 4 (main
results), Fig. 5 (per-sample EPG), Fig. 9 (threshold annealing schedule, from the config) and
Fig. 25 (accuracy and EPG vs the active-area threshold)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rightfocus.figures import MissingResults, RenderContext, register, style
from rightfocus.figures.aim_common import (ARCH_LABELS, DATASET_LABELS, WATERBIRDS, _isnan, pick_run,
                                          runs_table, variant_label)
from rightfocus.figures.aim_common import aim_protocol

GREY = "#999999"  # baselines


def _summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (dataset, arch, variant)."""
    runs = runs.assign(variant=runs.apply(variant_label, axis=1))
    cols = ["acc", "wg", "epg"]
    g = runs.groupby(["dataset", "arch", "variant"], sort=False)[cols]
    return g.mean().join(g.std(ddof=0), rsuffix="_std").reset_index()


def _main_metric(dataset: str) -> tuple[str, str]:
    return ("wg", "worst-group acc. (%)") if dataset in WATERBIRDS else ("acc", "accuracy (%)")


@register("aim.fig1", kind="figure", groups=["aim-main"],
          protocol=aim_protocol(
              "Fig. 1, Sec. 1",
              "AIM uses self-supervised masking to focus more on the object of interest, relying only on the "
              "image label.",
              "aim-main"))
def fig1(ctx: RenderContext) -> Any:
    """EPG (GradCAM) of the baseline and AIM variants on Waterbirds-95/100, ours vs the paper."""
    from rightfocus.experiments.paper_numbers_aim import TABLE1

    s = _summary(runs_table(ctx, "aim-main"))
    s = s[s["dataset"].isin(WATERBIRDS) & (s["arch"] == "convnext_tiny")]
    if s.empty:
        raise MissingResults("aim-main has no Waterbirds ConvNeXt runs - run `make aim`")
    fig, axes = style.subplots(1, 2, panel=(3.4, 2.4))
    for ax, ds in zip(axes[0], WATERBIRDS):
        d = s[s["dataset"] == ds]
        x = np.arange(len(d))
        ax.bar(x, d["epg"] * 100, yerr=d["epg_std"].fillna(0) * 100, color=[
            GREY if v == "baseline" else style.OKABE_ITO["blue"] for v in d["variant"]])
        paper = {("baseline" if not r["variant"]["aim"] else f"AIM[{r['variant']['stage']}, "
                  f"{round(r['variant']['tau'] * 100)}%]"): r[f"{ds}_epg"][0] for r in TABLE1}
        for i, v in enumerate(d["variant"]):
            if v in paper:
                ax.plot([i - 0.4, i + 0.4], [paper[v]] * 2, color="black", lw=1, ls="--",
                        label="paper (Table 1)" if i == 0 else None)
        ax.set_xticks(x, d["variant"], rotation=30, ha="right")
        ax.set_ylabel("EPG (%)")
        ax.set_title(DATASET_LABELS[ds])
    style.add_legend(fig)
    fig.suptitle("AIM Fig. 1: attribution localisation (GradCAM EPG), baseline vs AIM", y=1.08, fontsize=8)
    return fig


@register("aim.fig4", kind="figure", groups=["aim-main"],
          protocol=aim_protocol(
              "Fig. 4, Sec. 4.2",
              "Across several datasets (CUB-200, Waterbirds-95%, Waterbirds-100%, Travelingbirds) and "
              "architectures (ConvNeXt-tiny, ResNet50) our AIM approach outperforms the respective baseline in "
              "both accuracy as well as interpretability",
              "aim-main"))
def fig4(ctx: RenderContext) -> Any:
    """Accuracy (worst-group on Waterbirds) and EPG with and without AIM, per dataset and backbone."""
    s = _summary(runs_table(ctx, "aim-main"))
    datasets = [d for d in ("cub", "waterbirds95", "waterbirds100", "travelingbirds") if d in set(s["dataset"])]
    if not datasets:
        raise MissingResults("aim-main has no bird-dataset runs - run `make aim`")
    fig, axes = style.subplots(2, len(datasets), panel=(2.4, 2.0))
    archs = [a for a in ARCH_LABELS if a in set(s["arch"])]
    for j, ds in enumerate(datasets):
        metric, label = _main_metric(ds)
        for i, (m, lab) in enumerate(((metric, label), ("epg", "EPG (%)"))):
            ax = axes[i, j]
            xs, hs, es, cs, names = [], [], [], [], []
            for a_i, arch in enumerate(archs):
                d = s[(s["dataset"] == ds) & (s["arch"] == arch)]
                for k, (_, r) in enumerate(d.iterrows()):
                    xs.append(a_i * (len(d) + 1) + k)
                    hs.append(r[m] * 100)
                    es.append(0 if _isnan(r[f"{m}_std"]) else r[f"{m}_std"] * 100)
                    cs.append(GREY if r["variant"] == "baseline" else style.SEQUENTIAL[k % 6])
                    names.append(f"{ARCH_LABELS[arch].split('-')[0]} {r['variant']}")
            ax.bar(xs, hs, yerr=es, color=cs)
            ax.set_xticks(xs, names, rotation=60, ha="right", fontsize=5)
            ax.set_ylabel(lab)
            if i == 0:
                ax.set_title(DATASET_LABELS[ds])
    fig.suptitle("AIM Fig. 4: main results (worst-group accuracy on Waterbirds)", fontsize=8)
    fig.tight_layout()
    return fig


@register("aim.fig5", kind="figure", groups=["aim-main"],
          protocol=aim_protocol(
              "Fig. 5, Sec. 4.1",
              "EPG scores per sample are plotted for baseline model (x-axis) v/s model amended with AIM "
              "(y-axis).",
              "aim-main"))
def fig5(ctx: RenderContext) -> Any:
    """Per-sample test EPG: baseline (x) vs AIM (y), one panel per dataset (same test images)."""
    runs = runs_table(ctx, "aim-main")
    datasets = [d for d in ("cub", "waterbirds95", "waterbirds100", "travelingbirds") if d in set(runs["dataset"])]
    fig, axes = style.subplots(1, max(1, len(datasets)), panel=(2.3, 2.3))
    drawn = 0
    for ax, ds in zip(axes[0], datasets):
        try:
            base = pick_run(runs, ds, aim=False)
            aim = pick_run(runs, ds, aim=True, stage=2, tau=0.25)
        except MissingResults:
            ax.set_axis_off()
            continue
        a = pd.read_csv(ctx.run_dir(base["run_id"]) / "per_sample.csv")
        b = pd.read_csv(ctx.run_dir(aim["run_id"]) / "per_sample.csv")
        j = a.merge(b, on="index", suffixes=("_base", "_aim"))
        x, y = j["epg_gradcam_base"] * 100, j["epg_gradcam_aim"] * 100
        better = y > x
        ax.scatter(x[better], y[better], s=4, color=style.OKABE_ITO["green"], label="AIM higher")
        ax.scatter(x[~better], y[~better], s=4, color=style.OKABE_ITO["vermillion"], label="AIM lower/equal")
        ax.plot([0, 100], [0, 100], color="black", lw=0.7)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xlabel("baseline EPG (%)")
        ax.set_ylabel(f"{variant_label(aim)} EPG (%)")
        ax.set_title(f"{DATASET_LABELS[ds]}: {better.mean():.0%} improved", fontsize=7)
        drawn += 1
    if not drawn:
        raise MissingResults("aim-main lacks baseline + AIM pairs with per_sample.csv - run `make aim`")
    style.add_legend(fig)
    fig.suptitle("AIM Fig. 5: per-sample EPG", y=1.08, fontsize=8)
    return fig


@register("aim.fig9", kind="figure", groups=["config"],
          protocol=aim_protocol(
              "Fig. 9, App. A.3",
              "The annealing process of the active-area loss threshold begins either at the start of training "
              "or at a specific epoch (...) and continues for a set number of epochs (e.g., 100 epochs, which "
              "is half of the total 200 training epochs)."))
def fig9(ctx: RenderContext) -> Any:
    """The active-area threshold schedule (App. A.3): the paper's example (start 10, 100 epochs of
    annealing to 0.3 over 200) and both profiles' schedules, from `losses.area_threshold`."""
    from rightfocus.experiments.aim_grids import PROFILES
    from rightfocus.losses import area_threshold

    fig, axes = style.subplots(1, 2, panel=(3.2, 2.2))
    ep = np.arange(200)
    axes[0, 0].plot(ep + 1, [area_threshold(e, 10, 100, 0.3) for e in ep], label="Fig. 9 example: start 10, 100 ep., 0.3")
    p = PROFILES["paper"]
    axes[0, 0].plot(ep + 1, [area_threshold(e, p["extra"]["anneal_start"], p["extra"]["anneal_epochs"], 0.25)
                             for e in ep], ls="--", label="paper profile: start 0, 100 ep., 0.25")
    axes[0, 0].set_title("paper (200 epochs)")
    d = PROFILES["demo"]
    de = np.arange(d["epochs"])
    for tau in (0.25, 0.35):
        axes[0, 1].step(de + 1, [area_threshold(e, d["extra"]["anneal_start"], d["extra"]["anneal_epochs"], tau)
                                 for e in de], where="mid", label=f"demo: tau {tau:.0%}")
    axes[0, 1].set_title(f"demo ({d['epochs']} epochs)")
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.set_ylabel("active-area threshold")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=5)
    fig.suptitle("AIM Fig. 9: active-area threshold annealing", fontsize=8)
    fig.tight_layout()
    return fig


@register("aim.fig25", kind="figure", groups=["aim-threshold"],
          protocol=aim_protocol(
              "Fig. 25, App. D.1",
              "The first figure (on the right) illustrates how the worst-group accuracy of ConvNeXt-tiny+AIM "
              "(T=1) and ConvNeXt-tiny+AIM (T=2) changes with varying active-area thresholds.",
              "aim-threshold"))
def fig25(ctx: RenderContext) -> Any:
    """Worst-group / overall accuracy and EPG vs the final threshold, AIM(1) and AIM(2), WB-95."""
    from rightfocus.experiments.paper_numbers_aim import TABLE11

    runs = runs_table(ctx, "aim-threshold")
    runs = runs[(runs["dataset"] == "waterbirds95")]
    aim = runs[runs["aim"] & runs["tau"].map(lambda t: not _isnan(t)).astype(bool)]
    if aim.empty:
        raise MissingResults("aim-threshold has no AIM runs - run `make aim`")
    base = runs[~runs["aim"]]
    fig, axes = style.subplots(1, 3, panel=(2.4, 2.1))
    for k, (m, lab) in enumerate((("wg", "worst-group acc. (%)"), ("acc", "overall acc. (%)"), ("epg", "EPG (%)"))):
        ax = axes[0, k]
        for t, color in ((1, style.OKABE_ITO["blue"]), (2, style.OKABE_ITO["orange"])):
            d = aim[aim["stage"] == t].groupby("tau")[m].mean().sort_index() * 100
            ax.plot(d.index * 100, d.values, marker="o", color=color, label=f"ours AIM({t})")
            paper = sorted((r["tau"] * 100, r[f"waterbirds95_{m}"][0]) for r in TABLE11
                           if r["variant"]["aim"] and r["variant"]["stage"] == t)
            ax.plot(*zip(*paper), ls="--", color=color, alpha=0.6, label=f"paper AIM({t}) (Table 11)")
        if len(base):
            ax.axhline(base[m].mean() * 100, color="black", lw=0.8, label="ours baseline")
        ax.set_xlabel("final threshold tau (%)")
        ax.set_ylabel(lab)
    style.add_legend(fig)
    fig.suptitle("AIM Fig. 25: accuracy and EPG vs active-area threshold (Waterbirds-95%)", y=1.1, fontsize=8)
    return fig
