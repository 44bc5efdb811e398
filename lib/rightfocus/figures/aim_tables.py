"""AIM tables 1-16 (Alshami et al. 2025): our numbers beside the paper's, per table exactly as the
paper prints them (`rightfocus.experiments.paper_numbers_aim`). Columns ``<key> paper``, ``<key> ours``
(mean over our seeds, %), ``<key> diff`` (ours - paper)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rightfocus.experiments import paper_numbers_aim as P
from rightfocus.figures import MissingResults, RenderContext, Table, register
from rightfocus.figures import operating_point
from rightfocus.figures.aim_common import aim_notes, compare_frame, runs_table


def _compare(ctx: RenderContext, group: str, rows: list[dict[str, Any]], keys: list[str], title: str,
             label_cols: tuple[str, ...] = (), notes: tuple[str, ...] = ()) -> Table:
    runs = runs_table(ctx, group)
    frame = compare_frame(rows, keys, runs, label_cols, missed=list(operating_point.missed(ctx, [group])))
    return Table(frame, notes=[*notes, *aim_notes(ctx)], title=title)


@register("aim.tab1", kind="table", groups=["aim-main"])
def tab1(ctx: RenderContext) -> Table:
    keys = ["imagenet100_acc", "imagenet100_epg", "hardimagenet_acc", "hardimagenet_epg",
            "waterbirds100_wg", "waterbirds100_epg", "waterbirds95_wg", "waterbirds95_epg",
            "travelingbirds_acc", "travelingbirds_epg"]
    return _compare(ctx, "aim-main", P.TABLE1, keys, "AIM Table 1: ConvNeXt-t vs AIM variants",
                    notes=("Waterbirds columns are worst-group accuracy (minimum over the 4 groups)",))


@register("aim.tab2", kind="table", groups=["aim-bottomup"])
def tab2(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-bottomup", P.TABLE2, ["cub_acc"], "AIM Table 2: bottom-up vs top-down, CUB",
                    notes=("The paper's '[2, 25%] 84.00' equals Table 14's tau = 35 % row; bottom-up "
                           "[1] masks blocks 1,2,3 and [2] blocks 2,3 (Table 14's naming)",))


@register("aim.tab3", kind="table", groups=["aim-centerbias"])
def tab3(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-centerbias", P.TABLE3, ["shifted_cub_acc"], "AIM Table 3: shifted-center CUB",
                    notes=("79.33 here is 79.08 in Table 7 for the same model (paper's inconsistency)",
                           "shifted-center crops: centre offset 15 % of the shorter side, one of 4 "
                           "directions per image (A.6)"))


@register("aim.tab4", kind="table", groups=["config"])
def tab4(ctx: RenderContext) -> Table:
    from rightfocus.experiments.aim_grids import AIM_EXTRA_DEFAULTS, PROFILES

    ours = {
        "Validation dataset ratio": lambda p: f"{AIM_EXTRA_DEFAULTS['val_fraction']:.0%} of training split",
        "Batch Size": lambda p: PROFILES[p]["batch_size"],
        "top-down pathway learning rate": lambda p: PROFILES[p]["extra"].get("topdown_lr", AIM_EXTRA_DEFAULTS["topdown_lr"]),
        "Weight Decay": lambda p: PROFILES[p]["extra"].get("weight_decay", AIM_EXTRA_DEFAULTS["weight_decay"]),
        "RandAugment": lambda p: str(PROFILES[p]["extra"].get("randaugment", AIM_EXTRA_DEFAULTS["randaugment"])),
        "Label Smoothing": lambda p: AIM_EXTRA_DEFAULTS["label_smoothing"],
        "Learning Rate Schedule": lambda p: "cosine (per step)",
        "Optimizer": lambda p: "AdamW (torch.optim)",
        "drop out rate": lambda p: PROFILES[p]["extra"].get("dropout", AIM_EXTRA_DEFAULTS["dropout"]),
        "drop out path rate": lambda p: PROFILES[p]["extra"].get("drop_path", AIM_EXTRA_DEFAULTS["drop_path"]),
    }
    rows = [{"hyperparameter": k, "paper": str(v), "ours (paper profile)": str(ours[k]("paper")),
             "ours (demo profile)": str(ours[k]("demo"))} for k, v in P.TABLE4.items()]
    rows += [{"hyperparameter": "epochs / threshold annealing", "paper": "200 / 100 (A.3)",
              "ours (paper profile)": f"{PROFILES['paper']['epochs']} / {PROFILES['paper']['extra']['anneal_epochs']}",
              "ours (demo profile)": f"{PROFILES['demo']['epochs']} / {PROFILES['demo']['extra']['anneal_epochs']}"},
             {"hyperparameter": "mask loss weight lambda", "paper": "6 (Eq. 7)", "ours (paper profile)": "6",
              "ours (demo profile)": "6"}]
    return Table(pd.DataFrame(rows), notes=["from the configs (experiments/aim_grids.py)"],
                 title="AIM Table 4: hyperparameters")


@register("aim.tab5", kind="table", groups=["config"])
def tab5(ctx: RenderContext) -> Table:
    from rightfocus.experiments.aim_grids import PROFILES

    rows = [{"backbone": a, "paper": lr, "ours (paper profile)": PROFILES["paper"]["backbone_lr"][a],
             "ours (demo profile, tiny stand-in)": PROFILES["demo"]["backbone_lr"]["tiny"]}
            for a, lr in P.TABLE5.items()]
    return Table(pd.DataFrame(rows), notes=["from the configs (experiments/aim_grids.py)"],
                 title="AIM Table 5: backbone learning rates")


@register("aim.tab6", kind="table", groups=["none"])
def tab6(ctx: RenderContext) -> Table:
    from rightfocus.models.aim import measure_table6

    ours = {r["model"]: r for r in measure_table6(num_classes=200, size=224)}
    rows = []
    for r in P.TABLE6:
        o = ours.get(r["model"], {})
        rows.append({"model": r["model"], "GFLOPs paper": r["gflops"], "GFLOPs ours": o.get("gmacs"),
                     "params (M) paper": r["params_m"], "params (M) ours": o.get("params_m"),
                     "params diff": (o.get("params_m") or np.nan) - r["params_m"]})
    return Table(pd.DataFrame(rows), title="AIM Table 6: complexity (200 classes, 224 px)",
                 notes=["computed from our models (models/aim.py: complexity); GFLOPs are "
                        "multiply-accumulates (torch FlopCounterMode / 2), as the paper's 4.1 for ResNet-50",
                        "the top-down width is not stated in the paper; ours is chosen to match the "
                        "parameter counts (models/aim.py TOP_DOWN_WIDTH)"])


@register("aim.tab7", kind="table", groups=["aim-centerbias"])
def tab7(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-centerbias", P.TABLE7, ["shifted_cub_acc"],
                    "AIM Table 7: shifted-center CUB, all variants",
                    notes=("'No Annealing' = no active-area loss at all",))


@register("aim.tab8", kind="table", groups=["aim-main"])
def tab8(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-main", P.TABLE8, ["guided_gradcam_epg", "guided_backprop_epg"],
                    "AIM Table 8: EPG of Guided GradCAM / Guided Backprop, Waterbirds-95%",
                    notes=("Guided Backprop on GELU networks uses the explicit guided rule "
                           "(attributions/guided.py), not captum's ReLU-only override",))


@register("aim.tab9", kind="table", groups=["aim-main"])
def tab9(ctx: RenderContext) -> Table:
    keys = ["cub_acc", "cub_epg", "waterbirds100_wg", "waterbirds100_acc", "waterbirds100_epg",
            "waterbirds95_wg", "waterbirds95_acc", "waterbirds95_epg", "travelingbirds_acc", "travelingbirds_epg"]
    return _compare(ctx, "aim-main", P.TABLE9, keys, "AIM Table 9: extended results")


@register("aim.tab10", kind="table", groups=["aim-main"])
def tab10(ctx: RenderContext) -> Table:
    keys = ["cub_acc", "waterbirds100_wg", "waterbirds100_acc", "waterbirds95_wg", "waterbirds95_acc",
            "travelingbirds_acc"]
    runs = runs_table(ctx, "aim-main")
    frame = compare_frame(P.TABLE10, keys, runs, missed=list(operating_point.missed(ctx, ["aim-main"])))
    notes = ["DRO, GALS and ECBM rows are other papers' numbers as cited by AIM (no run of ours)"]
    bcos = _bcos_waterbirds(ctx)
    idx = frame.index[frame["model"].str.startswith("BCos")]
    if len(idx):
        if bcos is not None:
            frame.loc[idx, "waterbirds100_wg ours"] = bcos
            frame.loc[idx, "waterbirds100_wg diff"] = bcos - frame.loc[idx, "waterbirds100_wg paper"]
            notes.append("B-cos row, ours: the model-guidance Waterbirds group's guided B-cos runs, bird task "
                         "(test worst-group accuracy, minimum over the 4 groups, selected checkpoints, mean)")
        else:
            notes.append("B-cos row, ours: no model-guidance Waterbirds B-cos runs in these results "
                         f"(`make mg PROFILE={ctx.profile}`)")
    return Table(frame, notes=[*notes, *aim_notes(ctx)], title="AIM Table 10: comparison with other methods")


def _bcos_waterbirds(ctx: RenderContext) -> float | None:
    """Mean test worst-group accuracy (%) of the MG waterbirds group's guided B-cos runs, if any."""
    try:
        df = ctx.metrics("waterbirds")
    except FileNotFoundError:
        return None
    if df.empty or "model_kind" not in df:
        return None
    sel = df[(df["model_kind"] == "bcos") & (df["split"] == "test") & df.get("selected", True)]
    if "loss" in sel:  # guided runs (Rao et al.'s B-cos row is a guided model)
        sel = sel[sel["loss"].notna()]
    if "task" in sel:  # the conventional task (label = bird)
        sel = sel[sel["task"].isin(["bird", None]) | sel["task"].isna()]
    sel = sel[sel["worst_group_acc"].notna()] if "worst_group_acc" in sel else sel.iloc[0:0]
    if not len(sel):
        return None
    return float(sel["worst_group_acc"].astype(float).mean() * 100)


@register("aim.tab11", kind="table", groups=["aim-threshold"])
def tab11(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-threshold", P.TABLE11, ["waterbirds95_wg", "waterbirds95_acc", "waterbirds95_epg"],
                    "AIM Table 11: active-area threshold ablation, Waterbirds-95%", label_cols=("tau",),
                    notes=("Table 11's AIM(1, 25%) = 91.74 / 96.31 / 74.22 differs from Tables 1 and 15 "
                           "for the same model (paper's inconsistency)",))


@register("aim.tab12", kind="table", groups=["aim-noaux"])
def tab12(ctx: RenderContext) -> Table:
    keys = ["cub_acc", "cub_epg", "waterbirds95_wg", "waterbirds95_acc", "waterbirds95_epg"]
    return _compare(ctx, "aim-noaux", P.TABLE12, keys, "AIM Table 12: without auxiliary losses",
                    label_cols=("aux_losses",),
                    notes=("the paper's ResNet-50 'yes' rows repeat ConvNeXt's Waterbirds numbers (as printed)",))


@register("aim.tab13", kind="table", groups=["aim-onemask"])
def tab13(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-onemask", P.TABLE13, ["cub_acc"], "AIM Table 13: one mask estimator vs one per stage",
                    label_cols=("single_mask",),
                    notes=("single_mask: only the top stage's estimator; its mask nearest-upsampled to the "
                           "lower stages (App. D.3)",))


@register("aim.tab14", kind="table", groups=["aim-bottomup"])
def tab14(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-bottomup", P.TABLE14, ["cub_acc"], "AIM Table 14: bottom-up variants, CUB",
                    label_cols=("blocks",))


@register("aim.tab15", kind="table", groups=["aim-bottomup"])
def tab15(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-bottomup", P.TABLE15, ["waterbirds95_wg", "waterbirds95_epg", "sparsity"],
                    "AIM Table 15: top-down vs bottom-up, Waterbirds-95%",
                    notes=("sparsity score = share of active mask elements in % (100 = fully active), mean "
                           "over the stage masks and test images",))


@register("aim.tab16", kind="table", groups=["aim-edgeinit"])
def tab16(ctx: RenderContext) -> Table:
    return _compare(ctx, "aim-edgeinit", P.TABLE16, ["cub_acc"], "AIM Table 16: edge-emphasised initialisation",
                    label_cols=("edge_init",))
