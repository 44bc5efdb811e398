"""Shared readers for the AIM renderers (Alshami et al. 2025): one row per run with its variant and
test metrics, matching of the paper's table rows to our runs, and the stored per-run artefacts
(examples.pt, masks/epoch_<e>.pt, per_sample.csv) the AIM loop writes.

Nothing here trains; everything reads `results/<profile>/` through `rightfocus.runs.store`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rightfocus.figures import MissingResults, RenderContext

#: every AIM inventory id, its kind and groups
AIM_IDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "aim.fig1": ("figure", ("aim-main",)), "aim.fig2": ("figure", ()), "aim.fig3": ("figure", ("aim-main",)),
    "aim.fig4": ("figure", ("aim-main",)), "aim.fig5": ("figure", ("aim-main",)),
    "aim.fig6": ("figure", ("aim-main",)), "aim.fig7": ("figure", ("aim-main",)),
    "aim.fig8": ("figure", ("aim-centerbias",)), "aim.fig9": ("figure", ()),
    "aim.fig10": ("figure", ("aim-centerbias",)), "aim.fig11": ("figure", ("aim-main",)),
    "aim.fig12": ("figure", ("aim-centerbias",)),
    **{f"aim.fig{i}": ("figure", ("aim-main",)) for i in range(13, 25)},
    "aim.fig25": ("figure", ("aim-threshold",)), "aim.fig26": ("figure", ("aim-onemask",)),
    "aim.fig27": ("figure", ()), "aim.fig28": ("figure", ()), "aim.fig29": ("figure", ("aim-bottomup",)),
    "aim.fig30": ("figure", ()), "aim.fig31": ("figure", ()), "aim.fig32": ("figure", ()),
    "aim.tab1": ("table", ("aim-main",)), "aim.tab2": ("table", ("aim-bottomup",)),
    "aim.tab3": ("table", ("aim-centerbias",)), "aim.tab4": ("table", ()), "aim.tab5": ("table", ()),
    "aim.tab6": ("table", ()), "aim.tab7": ("table", ("aim-centerbias",)), "aim.tab8": ("table", ("aim-main",)),
    "aim.tab9": ("table", ("aim-main",)), "aim.tab10": ("table", ("aim-main",)),
    "aim.tab11": ("table", ("aim-threshold",)), "aim.tab12": ("table", ("aim-noaux",)),
    "aim.tab13": ("table", ("aim-onemask",)), "aim.tab14": ("table", ("aim-bottomup",)),
    "aim.tab15": ("table", ("aim-bottomup",)), "aim.tab16": ("table", ("aim-edgeinit",)),
    "aim.study": ("table", ()), "aim.claims": ("table", ()),
}

DATASET_LABELS = {"cub": "CUB-200", "waterbirds95": "Waterbirds-95%", "waterbirds100": "Waterbirds-100%",
                  "travelingbirds": "TravelingBirds", "imagenet100": "ImageNet-100",
                  "hardimagenet": "Hard-ImageNet", "imagewoof": "ImageWoof"}
ARCH_LABELS = {"convnext_tiny": "ConvNeXt-tiny", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}
WATERBIRDS = ("waterbirds95", "waterbirds100")


def _extra(df: pd.DataFrame, key: str, default: Any = None) -> pd.Series:
    col = f"extra.{key}"
    if col not in df.columns:
        return pd.Series([default] * len(df), index=df.index, dtype=object)
    return df[col].map(lambda v: default if _isnan(v) else v)


def _isnan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def runs_table(ctx: RenderContext, group: str) -> pd.DataFrame:
    """One row per finished run of `group`: variant columns and test metrics (fractions).

    Columns: run_id, dataset, model_kind, arch (the paper backbone the run stands for), aim, stage,
    tau, aux_losses, single_mask, direction, blocks, edge_init, seed, acc, wg, epg,
    guided_gradcam_epg, guided_backprop_epg, mask_active, stage_active, shifted_acc, shifted_epg.
    """
    if not ctx.has_group(group):
        raise MissingResults(f"no results for group {group} - run `make aim PROFILE={ctx.profile}`")
    df = ctx.metrics(group)
    df = df[df["paper"] == "aim"] if "paper" in df.columns else df
    df = df[df["done"]] if "done" in df.columns else df
    rows = []
    for rid, r in df.groupby("run_id", sort=False):
        first = r.iloc[0]
        test = r[r["split"] == "test"]
        shifted = r[r["split"] == "test_shifted"]

        def pick(frame: pd.DataFrame, method: str, col: str) -> float:
            sel = frame[frame["method"] == method]
            return float(sel[col].iloc[-1]) if len(sel) and not _isnan(sel[col].iloc[-1]) else np.nan

        e = {k: _extra(r.iloc[:1], k).iloc[0] for k in ("paper_arch", "stage", "tau", "aux_losses",
                                                         "single_mask", "direction", "blocks", "edge_init")}
        aim = first["model_kind"] == "aim"
        rows.append({
            "run_id": rid, "dataset": first["dataset"], "model_kind": first["model_kind"],
            "arch": e["paper_arch"] or first["arch"], "real_arch": first["arch"], "aim": aim,
            "stage": e["stage"] if aim and e["direction"] != "bottom_up" else None,
            "tau": e["tau"] if aim else None,
            "aux_losses": bool(e["aux_losses"]) if aim and e["aux_losses"] is not None else (True if aim else None),
            "single_mask": bool(e["single_mask"]) if aim else None,
            "direction": (e["direction"] or "top_down") if aim else None,
            "blocks": tuple(e["blocks"]) if aim and e["blocks"] is not None else None,
            "edge_init": bool(e["edge_init"]) if aim else None,
            "seed": int(first["seed"]),
            "acc": pick(test, "gradcam", "accuracy"), "wg": pick(test, "gradcam", "worst_group_acc"),
            "epg": pick(test, "gradcam", "epg"),
            "guided_gradcam_epg": pick(test, "guided_gradcam", "epg"),
            "guided_backprop_epg": pick(test, "guided_backprop", "epg"),
            "mask_active": pick(test, "gradcam", "mask_active") if "mask_active" in test else np.nan,
            "shifted_acc": pick(shifted, "gradcam", "accuracy"), "shifted_epg": pick(shifted, "gradcam", "epg"),
        })
    if not rows:
        raise MissingResults(f"group {group} has no finished AIM runs - run `make aim PROFILE={ctx.profile}`")
    return pd.DataFrame(rows)


def matches(runs: pd.DataFrame, variant: dict[str, Any] | None, dataset: str | None = None) -> pd.DataFrame:
    """Runs (all seeds) of a paper table row's `variant` (see paper_numbers_aim) on `dataset`."""
    if variant is None:
        return runs.iloc[0:0]
    sel = runs[(runs["arch"] == variant["arch"]) & (runs["aim"] == variant["aim"])]
    if dataset is not None:
        sel = sel[sel["dataset"] == dataset]
    if not variant["aim"]:
        return sel
    direction = variant.get("direction", "top_down")
    sel = sel[sel["direction"] == direction]
    if direction == "bottom_up":
        blocks = tuple(variant.get("blocks") or ())
        sel = sel[sel["blocks"].map(lambda b: tuple(b or ()) == blocks).astype(bool)]
    elif variant.get("stage") is not None:
        sel = sel[sel["stage"] == variant["stage"]]
    if "tau" in variant and (variant.get("stage") is not None or direction == "bottom_up"):
        tau = variant["tau"]
        sel = sel[sel["tau"].map(lambda t: (_isnan(t) and tau is None) or
                                 (not _isnan(t) and tau is not None and abs(float(t) - tau) < 1e-9)).astype(bool)]
    for key, default in (("aux_losses", True), ("single_mask", False), ("edge_init", False)):
        want = variant.get(key, default)
        sel = sel[sel[key].map(lambda v: bool(v) == bool(want)).astype(bool)]
    return sel


#: paper column key -> (dataset, our column) ; dataset None = the table's own dataset argument
def resolve_key(key: str) -> tuple[str | None, str]:
    """Map a paper column key (``waterbirds95_wg``, ``cub_acc``, ``shifted_cub_acc``, ...) to
    (dataset, column of `runs_table`)."""
    special = {"shifted_cub_acc": ("cub", "shifted_acc"), "guided_gradcam_epg": ("waterbirds95", "guided_gradcam_epg"),
               "guided_backprop_epg": ("waterbirds95", "guided_backprop_epg"),
               "sparsity": ("waterbirds95", "mask_active")}
    if key in special:
        return special[key]
    dataset, metric = key.rsplit("_", 1)
    return dataset, {"acc": "acc", "wg": "wg", "epg": "epg"}[metric]


def ours(runs: pd.DataFrame, variant: dict[str, Any] | None, key: str) -> tuple[float, float, int]:
    """(mean, std, n) in percent of our runs matching `variant` for the paper column `key`."""
    dataset, col = resolve_key(key)
    sel = matches(runs, variant, dataset)
    vals = sel[col].dropna().astype(float) * 100 if len(sel) else pd.Series(dtype=float)
    if not len(vals):
        return (np.nan, np.nan, 0)
    return (float(vals.mean()), float(vals.std(ddof=0)) if len(vals) > 1 else np.nan, int(len(vals)))


def compare_frame(paper_rows: Sequence[dict[str, Any]], keys: Sequence[str], runs: pd.DataFrame,
                  label_cols: Sequence[str] = (), missed: Sequence[str] = ()) -> pd.DataFrame:
    """A table with, per paper row and column key: the paper's value, ours (mean over seeds) and
    ours - paper. Rows that are other papers' numbers are kept with empty "ours". A row whose runs
    include one of `missed` (run ids that miss their operating point) gets the marker
    `figures.operating_point.MARK` after its model name."""
    from rightfocus.figures.operating_point import MARK

    out = []
    for row in paper_rows:
        used = set()
        if not row.get("source"):
            for key in keys:
                used |= set(matches(runs, row.get("variant"), resolve_key(key)[0])["run_id"])
        rec: dict[str, Any] = {"model": row["model"] + (MARK if used & set(missed) else "")}
        for c in label_cols:
            v = row.get(c)
            rec[c] = "no annealing" if c == "tau" and v is None and row.get("variant") else v
        if row.get("source"):
            rec["source"] = row["source"]
        for key in keys:
            cell = row.get(key)
            paper = cell[0] if isinstance(cell, tuple) else np.nan
            mean, _, n = ours(runs, row.get("variant"), key) if not row.get("source") else (np.nan, np.nan, 0)
            rec[f"{key} paper"] = paper
            rec[f"{key} ours"] = mean
            rec[f"{key} diff"] = mean - paper if not (np.isnan(mean) or np.isnan(paper)) else np.nan
        out.append(rec)
    return pd.DataFrame(out)


def aim_notes(ctx: RenderContext) -> list[str]:
    """Notes common to AIM tables: the metric conventions (deviations are added by `render_all`)."""
    notes = ["ours: mean over seeds of the selected checkpoint (best validation accuracy) on test; "
             "accuracy in %, worst-group = minimum over the 4 Waterbirds groups, EPG of GradCAM "
             "(ground-truth class) against the segmentation, in %"]
    return notes


# ----------------------------------------------------------------------------- artefacts


def load_pt(path: Path) -> dict[str, Any]:
    """An example/mask blob of a run (`store.load_torch`: tensors and plain data; pickle refused)."""
    from rightfocus.runs import store

    if not path.exists():
        raise MissingResults(f"{path} is missing (written by the AIM loop at the end of a run)")
    return store.load_torch(path)


def pick_run(runs: pd.DataFrame, dataset: str, arch: str = "convnext_tiny", aim: bool = True,
             stage: int | None = None, tau: float | None | str = "any", **more: Any) -> pd.Series:
    """One run (lowest seed) of a variant; `stage`/`tau` None-able; falls back in the demo profile to
    the nearest available stage/threshold of the same dataset and backbone."""
    sel = runs[(runs["dataset"] == dataset) & (runs["aim"] == aim) & (runs["arch"] == arch)]
    if aim:
        sel = sel[sel["direction"] == more.get("direction", "top_down")]
        for key, default in (("aux_losses", True), ("single_mask", False), ("edge_init", False)):
            want = more.get(key, default)
            sel = sel[sel[key].map(lambda v: bool(v) == bool(want)).astype(bool)]
        exact = sel
        if stage is not None:
            exact = exact[exact["stage"] == stage]
        if tau != "any":
            exact = exact[exact["tau"].map(lambda t: (_isnan(t) and tau is None) or
                                           (not _isnan(t) and tau is not None and abs(float(t) - float(tau)) < 1e-9)).astype(bool)]
        sel = exact if len(exact) else sel
    if not len(sel):
        raise MissingResults(f"no finished run of {DATASET_LABELS.get(dataset, dataset)} / {arch} "
                             f"{'AIM' if aim else 'baseline'} - run `make aim`")
    return sel.sort_values("seed").iloc[0]


def examples_of(ctx: RenderContext, run: pd.Series, shifted: bool = False) -> dict[str, Any]:
    return load_pt(ctx.run_dir(run["run_id"]) / ("examples_shifted.pt" if shifted else "examples.pt"))


def variant_label(run: pd.Series) -> str:
    """E.g. "AIM[2, 25%]", "AIM[1, no ann.]", "bottom-up [1,2,3], 25%", "baseline"."""
    if not run["aim"]:
        return "baseline"
    tau = "no ann." if _isnan(run["tau"]) else f"{round(float(run['tau']) * 100)}%"
    if run["direction"] == "bottom_up":
        return f"bottom-up {list(run['blocks'])}, {tau}"
    extra = "" if run["aux_losses"] else ", no aux"
    extra += ", 1 mask" if run["single_mask"] else ""
    extra += ", edge init" if run["edge_init"] else ""
    return f"AIM[{int(run['stage'])}, {tau}{extra}]"


def image_np(t: Any) -> np.ndarray:
    return np.clip(t.permute(1, 2, 0).numpy(), 0, 1)


def mask_np(m: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """A [1,h,w] (or [h,w]) mask as a float array, nearest-upsampled to `size`."""
    import torch
    import torch.nn.functional as F

    m = m.float()
    m = m[None] if m.dim() == 3 else m[None, None]
    if size is not None:
        m = F.interpolate(m, size=size, mode="nearest")
    return m[0, 0].numpy()


# ---- protocol cards (`rightfocus.protocol`): the paper profile's recipe per group ---------------

from rightfocus.protocol import INIT_IMAGENET, Protocol, Recipe  # noqa: E402

from rightfocus.experiments.aim_grids import EVAL_CENTER_CROP, PROFILES as AIM_PROFILES  # noqa: E402

AIM_CROP = (f"val/test: shorter side resized to size / {EVAL_CENTER_CROP:g}, centre crop (Sec. 6.2, App. B); "
            "train: whole image resized")
AIM_SHIFTED_CROP = AIM_CROP + (f"; shifted-centre CUB test: centre offset "
                               f"{AIM_PROFILES['paper']['extra']['shifted_offset']:.0%} of the shorter side (A.6)")
AIM_SELECTION = ("checkpoint with the best val accuracy (val = 20 % of the training split, Table 4); EPG of GradCAM "
                 "against the segmentation has no threshold (A.5); active-area threshold tau annealed (A.3)")
SEC4_INIT = "All of these models are pre-trained on ImageNet-1k [5]."
A3_TAU = "we employ progressive mask sparsification via threshold annealing during training, reducing the initial " \
         "100% active area to either 35% or 25%."
CONVNEXT_LR = (7e-6,)
CONVNEXT_RESNET_LR = (7e-6, 1e-3)


def _aim_recipes(group: str, lrs: tuple[float, ...], sizes: tuple[int, ...] = (224,), baseline: bool = True,
                 crop: str = AIM_CROP) -> tuple[Recipe, ...]:
    out = []
    if baseline:
        out.append(Recipe(group, "vanilla baselines", {"guided": False}, INIT_IMAGENET, (200,), lrs, 512, sizes,
                          crop, AIM_SELECTION, SEC4_INIT, "Sec. 4"))
    out.append(Recipe(group, "AIM runs", {"guided": True}, INIT_IMAGENET, (200,), lrs, 512, sizes, crop,
                      AIM_SELECTION, A3_TAU, "Sec. 4, A.1 (Tables 4, 5), A.3"))
    return tuple(out)


#: group -> the recipes of its runs in the paper profile (`experiments.aim_grids`)
AIM_RECIPES: dict[str, tuple[Recipe, ...]] = {
    "aim-main": _aim_recipes("aim-main", CONVNEXT_RESNET_LR, (224, 299)),
    "aim-threshold": _aim_recipes("aim-threshold", CONVNEXT_LR),
    "aim-noaux": _aim_recipes("aim-noaux", CONVNEXT_RESNET_LR, baseline=False),
    "aim-onemask": _aim_recipes("aim-onemask", CONVNEXT_LR, baseline=False),
    "aim-bottomup": _aim_recipes("aim-bottomup", CONVNEXT_LR),
    "aim-edgeinit": _aim_recipes("aim-edgeinit", CONVNEXT_LR, baseline=False),
    "aim-centerbias": _aim_recipes("aim-centerbias", CONVNEXT_LR, crop=AIM_SHIFTED_CROP),
}


def aim_protocol(section: str, follows: str, *groups: str, notes: Sequence[str] = (),
                 extra: Sequence[Recipe] = ()) -> Protocol:
    """An AIM id's protocol: the recipes of `groups` (plus `extra` recipes from other groups), the paper
    sentence it follows and where."""
    recipes = tuple(r for g in groups for r in AIM_RECIPES[g]) + tuple(extra)
    return Protocol(follows, section, recipes, (), tuple(notes))
