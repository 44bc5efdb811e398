"""Model guidance qualitative figures (Rao et al. 2023, Figs. 1, 2, 9, 11, 13, A1-A4, C1): attribution
maps of baseline and guided models on TEST images.

Each guided configuration is shown by its representative model (highest validation EPG with at
most 5 p.p. F1 drop, on the front pooled over lambda; supplement D.1.1), loaded from its kept
checkpoint through the results store; its baseline is the run it was fine-tuned from. Maps come
from `rightfocus.attributions.attribute` at the guided tap, upsampled to the image; images are
the first test images with boxes (deterministic), the same for every column."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rightfocus.figures import MissingResults, RenderContext, register, style
from rightfocus.figures.mg_common import MAIN_METHOD, MODEL_KINDS, guided, match, not_gradcam, representative_checkpoint
from rightfocus.figures.mg_common import mg_protocol

LOSSES = ("energy", "l1", "ppce", "rrr")
WB_NAMES = {"bird": ("landbird", "waterbird"), "place": ("land", "water")}
WB_GROUPS = {0: "landbird on land", 1: "landbird on water", 2: "waterbird on land", 3: "waterbird on water"}


# ---- loading -------------------------------------------------------------------------------------

def _cached(ctx: RenderContext, key: tuple, make: Any) -> Any:
    if key not in ctx._cache:
        ctx._cache[key] = make()
    return ctx._cache[key]


def load_model(ctx: RenderContext, run_id: str, which: str | int = "selected") -> tuple[Any, Any]:
    """(model in eval mode, RunConfig) of a kept checkpoint; a missing one becomes a placeholder."""
    from rightfocus.runs import store

    def make() -> tuple[Any, Any]:
        try:
            return store.load_checkpoint(ctx.run_dir(run_id), which)
        except FileNotFoundError as exc:
            raise MissingResults(f"checkpoint of {run_id} ({which}) is not available: {exc}") from exc

    return _cached(ctx, ("model", run_id, str(which)), make)


def guided_model(ctx: RenderContext, group: str, cell: dict[str, Any]) -> tuple[Any, Any] | None:
    """The representative model of the configuration matching `cell`, or None if not trained."""
    df = ctx.metrics(group)
    rows = match(guided(df), cell)
    if rows.empty:
        return None
    first = rows.iloc[0]
    keys = ("dataset", "task", "model_kind", "arch", "config_method", "config_tap", "loss",
            "annotation_fraction", "dilation")
    rows = match(rows, {k: (first[k] if first[k] is not None else None) for k in keys if k in rows.columns})
    if rows["task"].notna().any():  # Waterbirds runs select their checkpoint by val accuracy: use it
        first = rows.sort_values(["seed", "run_id"]).iloc[0]
        return load_model(ctx, str(first["run_id"]), "selected")
    run_id, epoch = representative_checkpoint(df, rows)
    return load_model(ctx, run_id, epoch)


def baseline_model(ctx: RenderContext, group: str, family: dict[str, Any]) -> tuple[Any, Any] | None:
    """The baseline a guided run of `family` (dataset, model_kind, arch[, task]) starts from (its
    `init_from`; for a list, the best on validation), else (no guided run, or guided runs that start
    from the initialisation, as Waterbirds') the family's baseline run in the group."""
    df = ctx.metrics(group)
    g = match(guided(df), family)
    if not g.empty:
        from rightfocus.runs import store
        from rightfocus.training.mg_task import resolve_init

        config = store.load_config(ctx.run_dir(str(g["run_id"].iloc[0])))
        if config.init_run_ids:
            rid, _ = resolve_init(config, ctx.results)
            return load_model(ctx, rid)
    base = match(df[df["is_baseline"].astype(bool)], family)
    if base.empty:
        return None
    return load_model(ctx, str(base["run_id"].iloc[0]))


def test_samples(ctx: RenderContext, config: Any, n: int, groups: Sequence[int] | None = None) -> list[dict]:
    """The first `n` test images that have boxes (and, for Waterbirds, lie in `groups`)."""
    from rightfocus.training.mg_task import build_datasets

    key = ("test", config.dataset, config.data_root, config.image_size, config.task)
    ds = _cached(ctx, key, lambda: build_datasets(config)["test"])
    out = []
    for i in range(len(ds)):
        s = ds[i]
        if len(s["boxes"]) == 0 or (groups is not None and int(s.get("group", -1)) not in groups):
            continue
        out.append(s)
        if len(out) == n:
            break
    if not out:
        raise MissingResults(f"no test images with boxes in {config.dataset} at {config.data_root}")
    return out


def _single_label(sample: dict) -> bool:
    return float(sample["labels"].sum()) == 1.0


def target_class(sample: dict) -> int:
    """The class whose attribution is shown: the label of a single-label image (Waterbirds: the
    task's class, bird or place), else the first ground-truth class with a box."""
    if _single_label(sample):
        return int(sample["labels"].argmax())
    return int(sample["boxes"][0, 0])


def class_boxes(sample: dict, k: int) -> np.ndarray:
    """Boxes of class `k` (every box of a single-label image: its guidance mask, Waterbirds too)."""
    b = sample["boxes"].numpy()
    return b if _single_label(sample) else b[b[:, 0] == k]


def attributions(model: Any, samples: Sequence[dict], method: str, tap: str,
                 targets: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maps [n, H, W] at input resolution for the target classes, and the class probabilities."""
    import torch

    from rightfocus.attributions import attribute
    from rightfocus.data import encode

    images = torch.stack([s["image"] for s in samples])
    x = encode(images, getattr(model, "input_encoding", "imagenet"))
    k = torch.tensor(list(targets) if targets is not None else [target_class(s) for s in samples])
    maps = attribute(model, x, k, method, layer=tap).detach().numpy()
    with torch.no_grad():
        logits = model(x)
    probs = logits.softmax(-1) if logits.shape[-1] > 1 else logits.sigmoid()
    return maps, probs.numpy()


def _image(s: dict) -> np.ndarray:
    return s["image"].permute(1, 2, 0).numpy()


def _grid(rows: int, cols: int) -> tuple[Any, np.ndarray]:
    return style.subplots(rows, cols, panel=(1.3, 1.3))


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=5, color="grey", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _columns_of_models(ctx: RenderContext, group: str, family: dict[str, Any], tap: str, method: str,
                       losses: Sequence[str], extra: dict[str, Any] | None = None) -> list[tuple[str, Any]]:
    """[(label, model or None)]: the baseline, then the representative model per loss."""
    cols = [("Baseline", baseline_model(ctx, group, family))]
    for loss in losses:
        m = guided_model(ctx, group, {**family, "config_tap": tap, "config_method": method, "loss": loss,
                                      **(extra or {})})
        cols.append((style.loss_label(loss), m))
    return cols


def _draw_row(image_ax: Any | None, map_axes: Sequence[Any], sample: dict, cols: Sequence[tuple[str, Any]],
              method: str, tap: str, title: bool, names: Sequence[str] | None = None) -> int:
    """The image with its target class's boxes (when `image_ax` is given), then one map per model
    column (with the prediction when `names` is given); returns the number of maps drawn."""
    k = target_class(sample)
    if image_ax is not None:
        style.heatmap(image_ax, None, _image(sample), class_boxes(sample, k), title="image" if title else "")
    drawn = 0
    for ax, (label, mc) in zip(map_axes, cols):
        if mc is None:
            _empty(ax, f"{label}:\nnot trained")
            continue
        maps, probs = attributions(mc[0], [sample], method, tap, [k])
        sub = label if title else ""
        if names is not None:
            p = probs[0]
            pred = int(p.argmax()) if p.shape[-1] > 1 else int(p[0] > 0.5)
            conf = float(p.max()) if p.shape[-1] > 1 else float(max(p[0], 1 - p[0]))
            sub = f"{label}\n{names[pred]} {conf:.2f}"
        style.heatmap(ax, maps[0], boxes=class_boxes(sample, k), title=sub)
        drawn += 1
    return drawn


def _need(drawn: int, what: str) -> None:
    if drawn == 0:
        raise MissingResults(f"no trained model for {what}")


def _family(ctx: RenderContext, group: str, kind: str, arch_from: str = "any") -> dict[str, Any]:
    df = ctx.metrics(group)
    rows = match(df, {"model_kind": kind})
    if rows.empty:
        raise MissingResults(f"{group} has no {kind} runs")
    fam = {"dataset": rows["dataset"].iloc[0], "model_kind": kind, "arch": rows["arch"].iloc[0]}
    return fam


def _config_of(mc_cols: Sequence[tuple[str, Any]]) -> Any:
    for _, mc in mc_cols:
        if mc is not None:
            return mc[1]
    return None


# ---- Figs. 9, A3: losses on B-cos input attributions ---------------------------------------------

def _loss_grid(ctx: RenderContext, groups: Sequence[str], n: int, title: str) -> Any:
    blocks = []
    for group in groups:
        fam = _family(ctx, group, "bcos")
        cols = _columns_of_models(ctx, group, fam, "input", "bcos", LOSSES)
        cfg = _config_of(cols)
        if cfg is None:
            continue
        blocks.append((group, cols, test_samples(ctx, cfg, n)))
    if not blocks:
        raise MissingResults(f"no B-cos models guided at the input in {', '.join(groups)}")
    nrows = sum(len(b[2]) for b in blocks)
    fig, axes = _grid(nrows, 1 + 1 + len(LOSSES))
    r = drawn = 0
    for group, cols, samples in blocks:
        for i in range(len(samples)):
            drawn += _draw_row(axes[r, 0], axes[r, 1:], samples[i], cols, "bcos", "input", title=(r == 0))
            axes[r, 0].set_ylabel(group, fontsize=6)
            r += 1
    _need(drawn, title)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


@register("mg.fig9", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. 9, Sec. 5.1",
              "Loss comparison for input attributions (atts.) of a B-cos model.",
              "voc-main",
              notes=("representative model: the highest EPG with at most 5 p.p. F1 drop (D.1.1)",)))
def fig9(ctx: RenderContext) -> Any:
    return _loss_grid(ctx, ["voc-main"], 1, "B-cos input attributions: baseline vs Energy / L1 / PPCE / RRR*")


@register("mg.figA3", kind="figure", groups=["voc-main", "coco-main"],
          protocol=mg_protocol(
              "Fig. A3, Supp. A.1",
              "here we just show additional examples for the B-cos models with input attributions, as this "
              "configuration exhibits the most detail.",
              "voc-main",
              "coco-main"))
def figA3(ctx: RenderContext) -> Any:
    return _loss_grid(ctx, ["voc-main", "coco-main"], 3, "B-cos input attributions, VOC (top) and COCO (bottom)")


# ---- Figs. A1, A2: models x losses x layers --------------------------------------------------------

def _models_layers(ctx: RenderContext, group: str, n: int, name: str) -> Any:
    blocks = []
    for kind in MODEL_KINDS:
        try:
            fam = _family(ctx, group, kind)
        except MissingResults:
            continue
        per_tap = {tap: _columns_of_models(ctx, group, fam, tap, MAIN_METHOD[kind], LOSSES)
                   for tap in ("input", "final")}
        cfg = _config_of(per_tap["input"] + per_tap["final"])
        if cfg is not None:
            blocks.append((kind, per_tap, test_samples(ctx, cfg, n)))
    if not blocks:
        raise MissingResults(f"{group}: no guided models at input/final")
    ncols = 1 + 2 * (1 + len(LOSSES))
    fig, axes = _grid(sum(len(b[2]) for b in blocks), ncols)
    r = drawn = 0
    for kind, per_tap, samples in blocks:
        for i in range(len(samples)):
            for t, tap in enumerate(("input", "final")):
                cols = [(f"{lab} @{style.TAP_LABELS[tap]}", m) for lab, m in per_tap[tap]]
                sub_axes = axes[r, 1 + t * (1 + len(LOSSES)): 1 + (t + 1) * (1 + len(LOSSES))]
                drawn += _draw_row(axes[r, 0], sub_axes, samples[i], cols, MAIN_METHOD[kind], tap, title=(i == 0))
            axes[r, 0].set_ylabel(style.MODEL_LABELS[kind], fontsize=6)
            r += 1
    _need(drawn, name)
    fig.suptitle(f"{name}: models (rows) x losses x layers (left: input, right: final)", fontsize=8)
    fig.tight_layout()
    return fig


@register("mg.figA1", kind="figure", groups=["voc-main"],
          protocol=mg_protocol("Fig. A1, Supp. A.1", "Qualitative examples from the VOC dataset.", "voc-main"))
def figA1(ctx: RenderContext) -> Any:
    return _models_layers(ctx, "voc-main", 2, "VOC")


@register("mg.figA2", kind="figure", groups=["coco-main"],
          protocol=mg_protocol("Fig. A2, Supp. A.1", "Qualitative examples from the COCO dataset.", "coco-main"))
def figA2(ctx: RenderContext) -> Any:
    return _models_layers(ctx, "coco-main", 2, "COCO")


# ---- Figs. 1, 2: standard vs guided ----------------------------------------------------------------

def gradcam_source(ctx: RenderContext) -> tuple[str, Any]:
    """Where Fig. 2's vanilla GradCAM column comes from: (group, config_method filter). The paper's
    column shows models guided through GradCAM at the final layer (Sec. 5.2, the voc-gradcam runs);
    without those runs, the IxG-guided final-layer models of voc-main, explained with GradCAM."""
    for group in ("voc-gradcam", "voc-main"):
        if ctx.has_group(group) and not match(guided(ctx.metrics(group)), {
                "model_kind": "vanilla", "config_tap": "final", "config_method": "gradcam", "loss": "energy"}).empty:
            return group, "gradcam"
    return "voc-main", not_gradcam


@register("mg.fig2", kind="figure", groups=["voc-main"],
          protocol=mg_protocol(
              "Fig. 2, Sec. 5.2",
              "We show model-inherent B-cos explanations (input layer) of a B-cos ResNet-50 and GradCAM "
              "explanations (final layer) of a conventional ResNet-50 before ('Standard') and after ('Guided') "
              "model guidance.",
              "voc-main",
              optional=("voc-gradcam",),
              notes=(
                  "GradCAM column: the Energy-guided vanilla models of voc-gradcam (guided through GradCAM at "
                  "the final layer) when present, else voc-main's IxG-guided final-layer models explained with "
                  "GradCAM",)))
def fig2(ctx: RenderContext) -> Any:
    """B-cos input attributions and vanilla GradCAM (final layer), standard vs Energy-guided; the GradCAM
    column reads the voc-gradcam runs when they are present (`gradcam_source`)."""
    rows = []
    bfam = _family(ctx, "voc-main", "bcos")
    rows.append(("B-cos @Input", "bcos", "input",
                 _columns_of_models(ctx, "voc-main", bfam, "input", "bcos", ["energy"])))
    vgroup, grad = gradcam_source(ctx)
    try:
        vfam = _family(ctx, vgroup, "vanilla")
        vcols = _columns_of_models(ctx, vgroup, vfam, "final", grad, ["energy"])
        label = "Vanilla GradCAM @Final" if grad == "gradcam" else "Vanilla (IxG-guided) GradCAM @Final"
        rows.append((label, "gradcam", "final", vcols))
    except MissingResults:
        pass
    cfg = _config_of([c for r in rows for c in r[3]])
    if cfg is None:
        raise MissingResults("voc-main: no Energy-guided B-cos/vanilla models")
    samples = test_samples(ctx, cfg, 3)
    fig, axes = _grid(len(samples), 1 + 2 * len(rows))
    drawn = 0
    for i in range(len(samples)):
        for b, (label, method, tap, cols) in enumerate(rows):
            named = [(f"{label}\n{'Standard' if lab == 'Baseline' else 'Guided'}", m) for lab, m in cols]
            drawn += _draw_row(axes[i, 0], axes[i, 1 + 2 * b: 3 + 2 * b], samples[i], named, method, tap,
                               title=(i == 0))
    _need(drawn, "fig2")
    fig.suptitle("Standard vs Energy-guided (VOC test)", fontsize=8)
    fig.tight_layout()
    return fig


def _waterbird_columns(ctx: RenderContext, kind: str = "bcos", tap: str = "input") -> list[tuple[str, str, Any]]:
    """[(label, task, model)]: per task (bird = conventional, place = reversed) baseline, Energy, L1."""
    df = ctx.metrics("waterbirds")
    out = []
    for task, setting in (("bird", "conv."), ("place", "rev.")):
        rows = match(df, {"model_kind": kind, "task": task})
        if rows.empty:
            continue
        fam = {"dataset": "waterbirds", "task": task, "model_kind": kind, "arch": rows["arch"].iloc[0]}
        for label, m in _columns_of_models(ctx, "waterbirds", fam, tap, MAIN_METHOD[kind], ["energy", "l1"]):
            out.append((f"{label} ({setting})", task, m))
    return out


def _waterbirds_grid(ctx: RenderContext, groups_per_block: Sequence[tuple[str, Sequence[int]]], n: int,
                     title: str) -> Any:
    cols = _waterbird_columns(ctx)
    cfg = _config_of([(c[0], c[2]) for c in cols])
    if cfg is None:
        raise MissingResults("waterbirds: no B-cos models")
    fig, axes = _grid(n * len(groups_per_block), 1 + len(cols))
    r = drawn = 0
    for name, groups in groups_per_block:
        samples = test_samples(ctx, cfg, n, groups=groups)
        for i in range(len(samples)):
            s = samples[i]
            style.heatmap(axes[r, 0], None, _image(s), s["boxes"].numpy(),
                          title=WB_GROUPS.get(int(s.get("group", -1)), ""))
            for j, (label, task, mc) in enumerate(cols, start=1):
                drawn += _draw_row(None, [axes[r, j]], s, [(label, mc)], "bcos", "input", title=True,
                                   names=WB_NAMES[task])
            r += 1
        for rr in range(r, r + n - len(samples)):
            for ax in axes[rr]:
                ax.axis("off")
        r += n - len(samples)
    _need(drawn, title)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


@register("mg.fig13", kind="figure", groups=["waterbirds"],
          protocol=mg_protocol("Fig. 13, Sec. 5.5", "Qualitative Waterbirds-100 results.", "waterbirds"))
def fig13(ctx: RenderContext) -> Any:
    return _waterbirds_grid(ctx, [("worst groups", (2, 1))], 2,
                            "Waterbirds (B-cos, input): baseline, conventional and reversed guidance, predictions")


@register("mg.figC1", kind="figure", groups=["waterbirds"],
          protocol=mg_protocol(
              "Fig. C1, Supp. C",
              "we show input layer attributions for B-cos models trained without guidance ('Baseline') as well "
              "as guided via the Energy or L1 loss",
              "waterbirds"))
def figC1(ctx: RenderContext) -> Any:
    return _waterbirds_grid(ctx, [("landbirds on water", (1,)), ("waterbirds on land", (2,))], 2,
                            "Waterbirds: (a) landbirds on water, (b) waterbirds on land (B-cos input attributions)")


@register("mg.fig1", kind="figure", groups=["voc-main", "waterbirds"],
          protocol=mg_protocol("Fig. 1, Sec. 1", "Model guidance increases object focus.", "voc-main", "waterbirds"))
def fig1(ctx: RenderContext) -> Any:
    """(a) baseline vs Energy-guided B-cos input attributions on multi-label VOC images (one class
    per image); (b) one Waterbirds test image (waterbird on land), baseline vs guided, predictions."""
    fam = _family(ctx, "voc-main", "bcos")
    cols = _columns_of_models(ctx, "voc-main", fam, "input", "bcos", ["energy"])
    cfg = _config_of(cols)
    if cfg is None:
        raise MissingResults("voc-main: no Energy-guided B-cos model at the input")
    samples = test_samples(ctx, cfg, 3)
    fig, axes = _grid(3, len(samples) + 1)
    try:
        wb = [c for c in _waterbird_columns(ctx) if c[1] == "bird" and not c[0].startswith("L1")]
    except MissingResults as exc:  # (a) still stands without (b)
        wb = []
        axes[0, len(samples)].text(0.5, 0.5, f"(b) unavailable:\n{exc}"[:120], fontsize=4, wrap=True,
                                   ha="center", va="center", transform=axes[0, len(samples)].transAxes)
    drawn = 0
    for i, s in enumerate(samples):
        k = target_class(s)
        style.heatmap(axes[0, i], None, _image(s), class_boxes(s, k), title=f"(a) class {k}")
        for r, (label, mc) in enumerate(cols, start=1):
            if mc is None:
                _empty(axes[r, i], "not trained")
                continue
            maps, _ = attributions(mc[0], [s], "bcos", "input", [k])
            style.heatmap(axes[r, i], maps[0], boxes=class_boxes(s, k), title=label)
            drawn += 1
    wcfg = _config_of([(c[0], c[2]) for c in wb])
    base = len(samples)
    if wcfg is not None:
        ws = test_samples(ctx, wcfg, 1, groups=(2,))
        style.heatmap(axes[0, base], None, _image(ws[0]), ws[0]["boxes"].numpy(), title="(b) waterbird on land")
        for j, (label, task, mc) in enumerate(wb[:2]):
            if mc is None:
                continue
            maps, probs = attributions(mc[0], ws, "bcos", "input")
            p = probs[0]
            pred = int(p.argmax()) if p.shape[-1] > 1 else int(p[0] > 0.5)
            style.heatmap(axes[1 + j, base], maps[0], boxes=ws[0]["boxes"].numpy(),
                          title=f"{label}: {WB_NAMES['bird'][pred]}")
            drawn += 1
    for ax in axes[:, base]:
        if not ax.images:
            ax.axis("off")
    _need(drawn, "fig1")
    fig.suptitle("(a) baseline (row 2) vs Energy-guided (row 3) B-cos input attributions; (b) Waterbirds",
                 fontsize=8)
    fig.tight_layout()
    return fig


# ---- Figs. 11, A4: dilated boxes --------------------------------------------------------------------

def _dilation_grid(ctx: RenderContext, blocks: Sequence[tuple[str, int]], title: str) -> Any:
    """Per (group, n) block: n test images, each as three rows: the test box and the dilated training
    boxes, then L1 and Energy (B-cos input) per dilation beside the baseline."""
    import torch

    from rightfocus.data import dilate_boxes

    drawn_blocks = []
    for group, n in blocks:
        df = ctx.metrics(group)
        fam = _family(ctx, group, "bcos")
        dils = sorted(match(guided(df), fam)["dilation"].unique().tolist())
        models = {loss: [(f"{d * 100:g} %", guided_model(ctx, group,
                                                         {**fam, "config_tap": "input", "loss": loss, "dilation": d}))
                         for d in dils] for loss in ("l1", "energy")}
        base = ("Baseline", baseline_model(ctx, group, fam))
        cfg = _config_of([m for ms in models.values() for m in ms] + [base])
        if cfg is None:
            raise MissingResults(f"{group}: no B-cos models")
        drawn_blocks.append((group, dils, models, base, test_samples(ctx, cfg, n)))
    fig, axes = _grid(3 * sum(len(b[4]) for b in drawn_blocks), 1 + max(len(b[1]) for b in drawn_blocks))
    drawn = r0 = 0
    for group, dils, models, base, samples in drawn_blocks:
        for s in samples:
            k = target_class(s)
            boxes = torch.as_tensor(class_boxes(s, k))
            size = tuple(s["image"].shape[-2:])
            style.heatmap(axes[r0, 0], None, _image(s), boxes.numpy(), title="test box")
            axes[r0, 0].set_ylabel(group, fontsize=6)
            for j, d in enumerate(dils, start=1):
                style.heatmap(axes[r0, j], None, _image(s), dilate_boxes(boxes, d, size).numpy(),
                              title=f"train box +{d * 100:g} %", box_color="#56B4E9")
            for r, loss in enumerate(("l1", "energy"), start=1):
                label = f"Baseline ({style.loss_label(loss)} row)"
                drawn += _draw_row(None, axes[r0 + r], s, [(label, base[1])] + models[loss], "bcos", "input",
                                   title=True)
            r0 += 3
    _need(drawn, title)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


@register("mg.fig11", kind="figure", groups=["voc-dilation"],
          protocol=mg_protocol(
              "Fig. 11, Sec. 5.4",
              "Qualitative results for dilated bounding boxes for a B-cos model at input.",
              "voc-dilation"))
def fig11(ctx: RenderContext) -> Any:
    return _dilation_grid(ctx, [("voc-dilation", 1)],
                          "Dilated training boxes (row 1), L1 (row 2) vs Energy (row 3), B-cos input")


@register("mg.figA4", kind="figure", groups=["voc-dilation", "coco-dilation"],
          protocol=mg_protocol(
              "Fig. A4, Supp. A.2",
              "Qualitative examples of the impact of using coarse bounding boxes for guidance.",
              "voc-dilation", "coco-dilation"))
def figA4(ctx: RenderContext) -> Any:
    """Supplement A.2 / Fig. A4: VOC and COCO examples."""
    return _dilation_grid(ctx, [("voc-dilation", 3), ("coco-dilation", 2)],
                          "Dilated training boxes, VOC and COCO: per block, boxes / L1 / Energy (B-cos input)")

