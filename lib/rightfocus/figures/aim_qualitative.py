"""AIM qualitative figures (Alshami et al. 2025): GradCAM heatmaps with EPG (Figs. 3, 11, 13-24),
stage and merged masks (Figs. 6, 26, 29), mask evolution over epochs (Fig. 7), shifted-center crops
(Figs. 8, 10, 12). They read the fixed test images each run stores (``examples.pt``,
``examples_shifted.pt``, ``masks/epoch_<e>.pt``): the same images for every run of a dataset."""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rightfocus.experiments.aim_grids import QUALITATIVE_TAUS
from rightfocus.figures import MissingResults, RenderContext, register, style
from rightfocus.figures.aim_common import (ARCH_LABELS, DATASET_LABELS, _isnan, examples_of, image_np, load_pt,
                                          mask_np, pick_run, runs_table, variant_label)
from rightfocus.figures.aim_common import aim_protocol

MASK_CMAP = "gray"


def _off(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _cam(ax: Any, ex: dict[str, Any], i: int, title: str) -> None:
    """Image with its GradCAM overlay and EPG in the title."""
    img = image_np(ex["image"][i])
    cam = ex["gradcam"][i].numpy().clip(0)
    ax.imshow(img)
    if cam.max() > 0:
        ax.imshow(cam / cam.max(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    ax.set_title(f"{title}\nEPG {float(ex['epg'][i]) * 100:.0f}%", fontsize=5.5)
    _off(ax)


def _cam_pairs(ctx: RenderContext, runs: Any, dataset: str, stage: int, pairs: list[tuple[Any, Any]],
               first_title: str) -> None:
    """Baseline | AIM[stage, 25%] GradCAM side by side for the first len(pairs) test examples."""
    base = examples_of(ctx, pick_run(runs, dataset, aim=False))
    aim_run = pick_run(runs, dataset, aim=True, stage=stage, tau=0.25)
    aim = examples_of(ctx, aim_run)
    for i, (ax_base, ax_aim) in enumerate(pairs):
        if i >= len(base["image"]):
            ax_base.set_axis_off()
            ax_aim.set_axis_off()
            continue
        _cam(ax_base, base, i, first_title if i == 0 else "baseline")
        _cam(ax_aim, aim, i, variant_label(aim_run))


def _merged(ax: Any, ex: dict[str, Any], i: int, title: str = "merged mask") -> None:
    if ex.get("merged") is None:
        ax.set_axis_off()
        return
    size = tuple(ex["image"].shape[-2:])
    m = mask_np(ex["merged"][i], size)
    # the merged mask sums the binary stage masks (DynConv's display): show how many stages keep
    # each pixel, so a stage that keeps everything does not hide what the others select
    stages = max(len(ex.get("stage_masks") or ()), int(m.max()), 1)
    ax.imshow(image_np(ex["image"][i]))
    ax.imshow(m / stages, cmap="magma", alpha=0.6, vmin=0, vmax=1)
    ax.set_title(f"{title} (stages kept, of {stages})" if title else "", fontsize=5.5)
    _off(ax)


def _stage_mask(ax: Any, ex: dict[str, Any], k: int, i: int, title: str) -> None:
    size = tuple(ex["image"].shape[-2:])
    ax.imshow(mask_np(ex["stage_masks"][k][i], size), cmap=MASK_CMAP, vmin=0, vmax=1)
    ax.set_title(title, fontsize=5.5)
    _off(ax)


def _comparison(ctx: RenderContext, dataset: str, arch: str, stage: int | None, title: str,
                n_images: int = 4, taus: Sequence[float | None] = QUALITATIVE_TAUS) -> Any:
    """Rows: fixed test images; columns: image, baseline GradCAM, AIM[T, tau] GradCAM per tau,
    AIM merged mask (Figs. 11, 13-24)."""
    runs = runs_table(ctx, "aim-main")
    note = ""
    if not ((runs["dataset"] == dataset) & (runs["arch"] == arch)).any():
        if ctx.profile != "demo":
            raise MissingResults(f"no {ARCH_LABELS.get(arch, arch)} runs on {DATASET_LABELS.get(dataset, dataset)} "
                                 f"in aim-main - run `make aim PROFILE={ctx.profile}`")
        note = f" (demo: tiny stand-in for {ARCH_LABELS.get(arch, arch)})"
        arch = "convnext_tiny"
    base = pick_run(runs, dataset, arch, aim=False)
    aims = []
    absent = []
    for tau in taus:
        try:
            r = pick_run(runs, dataset, arch, aim=True, stage=stage, tau=tau)
        except MissingResults:
            absent.append(tau)
            continue
        if r["run_id"] not in [a["run_id"] for a in aims]:
            aims.append(r)
    if not aims:
        raise MissingResults(f"no AIM runs on {dataset} in aim-main - run `make aim`")
    exs = [examples_of(ctx, base)] + [examples_of(ctx, a) for a in aims]
    n = min(n_images, len(exs[0]["image"]))
    cols = 2 + len(aims) + 1
    fig, axes = style.subplots(n, cols, panel=(1.15, 1.2))
    for i in range(n):
        axes[i, 0].imshow(image_np(exs[0]["image"][i]))
        axes[i, 0].set_title("image" if i == 0 else "", fontsize=5.5)
        _off(axes[i, 0])
        _cam(axes[i, 1], exs[0], i, "baseline")
        for k, (a, ex) in enumerate(zip(aims, exs[1:])):
            _cam(axes[i, 2 + k], ex, i, variant_label(a))
        _merged(axes[i, -1], exs[-1], i, f"merged mask\n{variant_label(aims[-1])}")
    if absent and ctx.profile != "demo":
        note += " (not trained: " + ", ".join("no annealing" if t is None else f"{t:.0%}" for t in absent) + ")"
    fig.suptitle(title + note, fontsize=7)
    fig.tight_layout()
    return fig


@register("aim.fig3", kind="figure", groups=["aim-main"],
          protocol=aim_protocol(
              "Fig. 3, Sec. 4.1",
              "A qualitative visualization of Grad-CAM heatmaps comparing baseline ConvNeXt-tiny models and "
              "ConvNeXt-tiny+AIM models across HardImagenet (...), TravelingBirds, WaterBirds-100%, and "
              "ImageNet100 datasets.",
              "aim-main"))
def fig3(ctx: RenderContext) -> Any:
    """GradCAM of baseline vs AIM with EPG on Hard-ImageNet, TravelingBirds, WB-100, ImageNet-100."""
    runs = runs_table(ctx, "aim-main")
    datasets = [d for d in ("hardimagenet", "travelingbirds", "waterbirds100", "imagenet100") if d in set(runs["dataset"])]
    if not datasets:
        raise MissingResults("aim-main has none of Fig. 3's datasets - run `make aim`")
    fig, axes = style.subplots(2, 2 * len(datasets), panel=(1.1, 1.2))
    for j, ds in enumerate(datasets):
        pairs = [(axes[i, 2 * j], axes[i, 2 * j + 1]) for i in range(2)]
        _cam_pairs(ctx, runs, ds, 1, pairs, f"{DATASET_LABELS[ds]}\nbaseline")
    fig.suptitle("AIM Fig. 3: GradCAM, baseline vs AIM (EPG per map)", fontsize=7)
    fig.tight_layout()
    return fig


@register("aim.fig6", kind="figure", groups=["aim-main"],
          protocol=aim_protocol(
              "Fig. 6, Sec. 5",
              "Illustration of masks learned at the two stages within the network (using ConvNeXt-tiny+AIM [2, "
              "25%]), along with the final merged mask for each image.",
              "aim-main"))
def fig6(ctx: RenderContext) -> Any:
    """Masks of the top-down stages and the merged mask, AIM[2, 25%] (Fig. 6)."""
    runs = runs_table(ctx, "aim-main")
    ds = "cub" if "cub" in set(runs["dataset"]) else runs["dataset"].iloc[0]
    run = pick_run(runs, ds, aim=True, stage=2, tau=0.25)
    ex = examples_of(ctx, run)
    stages = ex["stages"]
    n = min(4, len(ex["image"]))
    fig, axes = style.subplots(n, 2 + len(stages), panel=(1.1, 1.15))
    for i in range(n):
        axes[i, 0].imshow(image_np(ex["image"][i]))
        _off(axes[i, 0])
        for k, s in enumerate(stages):
            _stage_mask(axes[i, 1 + k], ex, k, i, f"stage #{s} mask" if i == 0 else "")
        _merged(axes[i, -1], ex, i, "merged" if i == 0 else "")
    fig.suptitle(f"AIM Fig. 6: stage masks and merged mask, {variant_label(run)}, {DATASET_LABELS.get(ds, ds)}",
                 fontsize=7)
    fig.tight_layout()
    return fig


@register("aim.fig7", kind="figure", groups=["aim-main"],
          protocol=aim_protocol(
              "Fig. 7, Sec. 5",
              "Visualization of the evolution of learned masks at two different stages (Stage #2 and Stage #3) "
              "of a ConvNeXt-tiny+AIM [2, 25%] model throughout the training epochs.",
              "aim-main"))
def fig7(ctx: RenderContext) -> Any:
    """Masks of two stages of fixed images over the training epochs (``masks/epoch_<e>.pt``)."""
    runs = runs_table(ctx, "aim-main")
    ds = "cub" if "cub" in set(runs["dataset"]) else runs["dataset"].iloc[0]
    run = pick_run(runs, ds, aim=True, stage=2, tau=0.25)
    mdir = ctx.run_dir(run["run_id"]) / "masks"
    files = sorted(mdir.glob("epoch_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    if not files:
        raise MissingResults(f"{mdir} has no per-epoch masks - run `make aim`")
    images = load_pt(mdir / "images.pt")["image"]
    epochs = [load_pt(f) for f in files]
    stages = epochs[0]["stages"][-2:]  # the two highest-resolution stages, as Fig. 7's #2 and #3
    picks = [epochs[0]["stages"].index(s) for s in stages]
    n_img = min(2, len(images))
    size = tuple(images.shape[-2:])
    fig, axes = style.subplots(n_img * len(stages), len(epochs) + 1, panel=(0.95, 1.0))
    for i in range(n_img):
        for r, (s, k) in enumerate(zip(stages, picks)):
            row = i * len(stages) + r
            axes[row, 0].imshow(image_np(images[i]))
            axes[row, 0].set_title(f"stage #{s}", fontsize=5.5)
            _off(axes[row, 0])
            for c, e in enumerate(epochs):
                axes[row, c + 1].imshow(mask_np(e["stage_masks"][k][i], size), cmap=MASK_CMAP, vmin=0, vmax=1)
                axes[row, c + 1].set_title(f"epoch {e['epoch']}" if row == 0 else "", fontsize=5.5)
                _off(axes[row, c + 1])
    fig.suptitle(f"AIM Fig. 7: mask evolution, {variant_label(run)}, {DATASET_LABELS.get(ds, ds)}", fontsize=7)
    fig.tight_layout()
    return fig


def _shifted_runs(ctx: RenderContext) -> pd.DataFrame:
    runs = runs_table(ctx, "aim-centerbias")
    return runs[runs["dataset"] == "cub"]


@register("aim.fig8", kind="figure", groups=["aim-centerbias"],
          protocol=aim_protocol(
              "Fig. 8, Sec. 6.2",
              "This illustration shows the merged masks generated by ConvNeXt-t+AIM (2, 25%) on two images from"
              " CUB-200.",
              "aim-centerbias"))
def fig8(ctx: RenderContext) -> Any:
    """Merged masks of AIM(2, 25%) on shifted-center CUB crops."""
    runs = _shifted_runs(ctx)
    run = pick_run(runs, "cub", aim=True, stage=2, tau=0.25)
    ex = examples_of(ctx, run, shifted=True)
    n = min(4, len(ex["image"]))
    fig, axes = style.subplots(2, n, panel=(1.2, 1.2))
    for i in range(n):
        axes[0, i].imshow(image_np(ex["image"][i]))
        axes[0, i].set_title("shifted crop", fontsize=5.5)
        _off(axes[0, i])
        _merged(axes[1, i], ex, i)
    fig.suptitle(f"AIM Fig. 8: merged masks on shifted-center CUB, {variant_label(run)}", fontsize=7)
    fig.tight_layout()
    return fig


@register("aim.fig10", kind="figure", groups=["aim-centerbias"],
          protocol=aim_protocol(
              "Fig. 10, App. A.6",
              "The image illustrates the shifted cropping technique used to assess the center bias of the "
              "generated masks.",
              "aim-centerbias"))
def fig10(ctx: RenderContext) -> Any:
    """The four shifted crop windows on a CUB test image (`data.shifted_crop.shifted_window`)."""
    from matplotlib.patches import Rectangle

    from rightfocus.data.shifted_crop import DIRECTIONS, shifted_window

    runs = _shifted_runs(ctx)
    run = pick_run(runs, "cub", aim=False)
    ex = examples_of(ctx, run)
    cfg_offset = _offset(ctx, run)
    fig, axes = style.subplots(1, min(2, len(ex["image"])), panel=(2.4, 2.4))
    colors = [style.OKABE_ITO[c] for c in ("vermillion", "blue", "green", "orange")]
    for i, ax in enumerate(axes[0]):
        img = image_np(ex["image"][i])
        h, w = img.shape[:2]
        ax.imshow(img)
        for d, col in zip(range(len(DIRECTIONS)), colors):
            top, left, side, _ = shifted_window(h, w, cfg_offset, d)
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), side, side, fill=False, edgecolor=col, lw=1.2))
            ax.plot(left + side / 2 - 0.5, top + side / 2 - 0.5, "o", color=col, ms=3)
        _off(ax)
    fig.suptitle(f"AIM Fig. 10: shifted-center crops (offset {cfg_offset:.0%} of the shorter side; one of "
                 "the 4 windows per image, at random)", fontsize=7)
    return fig


def _offset(ctx: RenderContext, run: pd.Series) -> float:
    from rightfocus.runs import store

    from rightfocus.aim_options import AimOptions

    off = AimOptions.from_config(store.load_config(ctx.run_dir(run["run_id"]))).shifted_offset
    if off is None:
        raise MissingResults("the center-bias runs have no shifted_offset in their config")
    return off


@register("aim.fig11", kind="figure", groups=["aim-main"],
          protocol=aim_protocol(
              "Fig. 11, App. C.1",
              "Models amended with AIM consistently exhibit enhanced localization of genuine features, "
              "effectively suppressing spurious cues in both in-domain and out-of-domain scenarios.",
              "aim-main"))
def fig11(ctx: RenderContext) -> Any:
    """More GradCAM comparisons: CUB, TravelingBirds, WB-100, Hard-ImageNet, baseline vs AIM."""
    runs = runs_table(ctx, "aim-main")
    datasets = [d for d in ("cub", "travelingbirds", "waterbirds100", "hardimagenet") if d in set(runs["dataset"])]
    if not datasets:
        raise MissingResults("aim-main has none of Fig. 11's datasets - run `make aim`")
    fig, axes = style.subplots(len(datasets), 6, panel=(1.05, 1.15))
    for r, ds in enumerate(datasets):
        pairs = [(axes[r, 2 * k], axes[r, 2 * k + 1]) for k in range(3)]
        _cam_pairs(ctx, runs, ds, 2, pairs, f"{DATASET_LABELS[ds]} baseline")
    fig.suptitle("AIM Fig. 11: more GradCAM comparisons", fontsize=7)
    fig.tight_layout()
    return fig


@register("aim.fig12", kind="figure", groups=["aim-centerbias"],
          protocol=aim_protocol(
              "Fig. 12, App. C.2",
              "This figure illustrates the masks generated at each stage for two primary architectural "
              "variants: ConvNeXt+AIM (T=1) (...) and ConvNeXt+AIM (T=2) (...), each utilizing different mask "
              "active-area thresholds",
              "aim-centerbias"))
def fig12(ctx: RenderContext) -> Any:
    """Per-stage and merged masks on shifted-center CUB, AIM(1) and AIM(2) at each threshold."""
    runs = _shifted_runs(ctx)
    aims = runs[runs["aim"]].sort_values(["stage", "tau"], na_position="last")
    aims = aims.drop_duplicates(subset=["stage", "tau"])
    if aims.empty:
        raise MissingResults("aim-centerbias has no AIM runs - run `make aim`")
    max_stages = 0
    exs = []
    for _, r in aims.iterrows():
        ex = examples_of(ctx, r, shifted=True)
        exs.append((r, ex))
        max_stages = max(max_stages, len(ex["stages"]))
    i = 0  # one image per row, as the paper's groups
    fig, axes = style.subplots(len(exs), 2 + max_stages, panel=(1.05, 1.1))
    for row, (r, ex) in enumerate(exs):
        axes[row, 0].imshow(image_np(ex["image"][i]))
        axes[row, 0].set_title(variant_label(r), fontsize=5.5)
        _off(axes[row, 0])
        for k in range(max_stages):
            if k < len(ex["stages"]):
                _stage_mask(axes[row, 1 + k], ex, k, i, f"stage #{ex['stages'][k]}")
            else:
                axes[row, 1 + k].set_axis_off()
        _merged(axes[row, -1], ex, i)
    fig.suptitle("AIM Fig. 12: masks on shifted-center CUB", fontsize=7)
    fig.tight_layout()
    return fig


#: Figs. 13-24: (dataset, paper backbone, top-down stage T), as listed in App. C.3
QUALITATIVE: dict[str, tuple[str, str, int]] = {
    "aim.fig13": ("cub", "convnext_tiny", 1), "aim.fig14": ("cub", "convnext_tiny", 2),
    "aim.fig15": ("cub", "resnet50", 2), "aim.fig16": ("cub", "resnet50", 3),
    "aim.fig17": ("waterbirds95", "convnext_tiny", 1), "aim.fig18": ("waterbirds95", "convnext_tiny", 2),
    "aim.fig19": ("waterbirds95", "resnet50", 2), "aim.fig20": ("waterbirds95", "resnet50", 3),
    "aim.fig21": ("travelingbirds", "resnet101", 2), "aim.fig22": ("travelingbirds", "resnet50", 2),
    "aim.fig23": ("waterbirds100", "convnext_tiny", 2), "aim.fig24": ("waterbirds100", "resnet50", 2),
}


def _make_qualitative(fig_id: str, dataset: str, arch: str, stage: int) -> None:
    def render(ctx: RenderContext) -> Any:
        return _comparison(ctx, dataset, arch, stage,
                           f"AIM {fig_id.split('.')[1].replace('fig', 'Fig. ')}: {DATASET_LABELS[dataset]}, "
                           f"{ARCH_LABELS[arch]}+AIM (T={stage}) vs baseline", n_images=4)

    render.__name__ = fig_id.replace(".", "_")
    render.__doc__ = f"GradCAM + merged masks, {dataset}, {arch}, T={stage} (App. C.3)."
    number = fig_id.split(".fig")[1]
    label = "ResNet50" if arch == "resnet50" else "ResNet101" if arch == "resnet101" else "ConvNeXt-tiny"
    register(fig_id, kind="figure", groups=["aim-main"],
             protocol=aim_protocol(f"Fig. {number}, App. C.3",
                                   f"Comparison of GradCAM attribution maps between {label}+AIM models with different "
                                   "mask active-area thresholds, along with the generated merged masks.", "aim-main",
                                   notes=(f"{DATASET_LABELS[dataset]}, T={stage}, one column per active-area threshold "
                                          f"{', '.join(f'{t:.0%}' for t in QUALITATIVE_TAUS)} (A.3)",)))(render)


for _id, (_ds, _arch, _t) in QUALITATIVE.items():
    _make_qualitative(_id, _ds, _arch, _t)


def _mask_grid(ctx: RenderContext, runs: pd.DataFrame, title: str, shifted: bool = False) -> Any:
    """Rows: runs (one image each); columns: image, each stage's mask, merged mask."""
    exs = [(r, examples_of(ctx, r, shifted)) for _, r in runs.iterrows()]
    width = max(len(ex["stages"]) for _, ex in exs)
    n_img = min(2, len(exs[0][1]["image"]))
    fig, axes = style.subplots(len(exs) * n_img, 2 + width, panel=(1.05, 1.1))
    for j, (r, ex) in enumerate(exs):
        for i in range(n_img):
            row = j * n_img + i
            axes[row, 0].imshow(image_np(ex["image"][i]))
            axes[row, 0].set_title(variant_label(r) if i == 0 else "", fontsize=5.5)
            _off(axes[row, 0])
            for k in range(width):
                if k < len(ex["stages"]):
                    act = float(ex["stage_masks"][k][i].float().mean())
                    _stage_mask(axes[row, 1 + k], ex, k, i, f"stage #{ex['stages'][k]} ({act:.0%} active)")
                else:
                    axes[row, 1 + k].set_axis_off()
            _merged(axes[row, -1], ex, i)
    fig.suptitle(title, fontsize=7)
    fig.tight_layout()
    return fig


@register("aim.fig26", kind="figure", groups=["aim-onemask"],
          protocol=aim_protocol(
              "Fig. 26, App. D.3",
              "Qualitative Comparison between the different architectural configurations of AIM when using "
              "masks from the last layer.",
              "aim-onemask"))
def fig26(ctx: RenderContext) -> Any:
    """Masks when only the top stage's estimator is used (upsampled to the lower stages)."""
    runs = runs_table(ctx, "aim-onemask")
    sel = runs[runs["aim"] & runs["single_mask"].astype(bool)].drop_duplicates(subset=["stage", "tau"])
    if sel.empty:
        raise MissingResults("aim-onemask has no single-mask runs - run `make aim`")
    return _mask_grid(ctx, sel, "AIM Fig. 26: masks of the top stage's estimator, used by every stage")


@register("aim.fig29", kind="figure", groups=["aim-bottomup"],
          protocol=aim_protocol(
              "Fig. 29, App. D.4",
              "This figure illustrates the masks generated at different stages of the ConvNeXt-tiny backbone "
              "within the Bottom-up AIM network.",
              "aim-bottomup"))
def fig29(ctx: RenderContext) -> Any:
    """Bottom-up AIM's masks per masked block (they stay (nearly) fully active in the paper)."""
    runs = runs_table(ctx, "aim-bottomup")
    sel = runs[runs["aim"] & (runs["direction"] == "bottom_up") & (runs["dataset"] == "cub")]
    sel = sel[sel["tau"].map(lambda t: not _isnan(t)).astype(bool)]
    if sel.empty:
        raise MissingResults("aim-bottomup has no bottom-up CUB runs - run `make aim`")
    return _mask_grid(ctx, sel.drop_duplicates(subset=["blocks", "tau"]),
                      "AIM Fig. 29: bottom-up AIM masks (share of active elements per block)")
