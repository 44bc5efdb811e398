"""Model guidance's task for the run engine (Rao et al. 2023, Eq. (1), Sec. 3.3-3.5, 4 and D.1).

What is MG's own: the model (`models.build_model`; guided runs start from a baseline's selected
checkpoint, or from the baselines' initialisation (`FROM_INIT`), and record it as epoch 0), the
training step (`GuidedStep`: BCE + lambda * the localisation loss of one random ground-truth class
per image), the evaluation step (`evaluation_step`: classification + the maps of every (tap, method)
pair; the IoU threshold of each checkpoint and pair selected on validation among `iou_candidates`
and applied on test, Sec. 3.3), and the selection: baselines keep the best validation F1 (Waterbirds:
accuracy), guided runs their own validation Pareto front in (F1, EPG, IoU) and its representative
model, evaluated on test. The step loops and the run's life (lock, resume, checkpoints, metrics
file, `done`) are `training.engine`'s, the metrics `training.evaluator`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, RandomSampler, Subset

from rightfocus.attributions import attribute_all_classes
from rightfocus.data.boxes import boxes_to_masks
from rightfocus.data.collate import SEG_VOID
from rightfocus.runs import store
from rightfocus.runs.config import FROM_INIT, NATIVE_METHOD, RunConfig
from rightfocus.attributions.methods import get_method
from rightfocus.data.masks import object_mask
from rightfocus.data.registry import dataset_spec
from rightfocus.guide import Guide
from rightfocus.metrics import DEFAULT_IOU_THRESHOLD, IOU_THRESHOLDS, suite_for
from rightfocus.pareto import front_rows, representative
from rightfocus.training import checkpoint as ckpt
from rightfocus.training import engine
from rightfocus.training.distributed import DistributedTapped, ShardedBatchSampler, shard_range
from rightfocus.training.engine import Task, TrainStep, batches, eval_subset
from rightfocus.training.evaluator import MG_COLUMNS, EvalBatch, Evaluator, Localisation
from rightfocus.training.evaluator import metrics_row as evaluator_rows
from rightfocus.training.mask_sources import BoxSource, MaskSource, _has_box_of, build_mask_source
from rightfocus.training.runtime import Runtime, full


@dataclass(frozen=True)
class Guidance:
    """What the localisation term of Eq. (1) is: method at tap, loss, weight lambda. (Samples
    flagged ``invert_mask`` are guided to everything OUTSIDE their boxes: Waterbirds reversed task.)"""

    method: str
    tap: str
    loss: str
    lam: float


def random_positive_class(labels: Tensor, generator: torch.Generator, global_size: int | None = None,
                          offset: int = 0) -> Tensor:
    """One ground-truth class per image, drawn uniformly (Sec. 3.5); -1 for images without one.
    `labels` may be rows ``offset ..`` of a global batch of `global_size` images (one rank's part
    under DDP): the random numbers are drawn for the whole global batch, so every rank draws what a
    one-process run draws and the generator advances alike on every rank."""
    labels = labels.cpu()
    n = labels.shape[0]
    if global_size is None:
        noise = torch.rand(labels.shape, generator=generator)
    else:
        noise = torch.rand((global_size, labels.shape[1]), generator=generator)[offset:offset + n]
    scores = torch.where(labels > 0, noise, torch.full_like(noise, -1.0))
    choice = scores.argmax(1)
    return torch.where((labels > 0).any(1), choice, torch.full_like(choice, -1))


def localisation_step(model: torch.nn.Module, images: Tensor, targets: Tensor, masks: Tensor, tap: str,
                      method: str, loss: str, guided: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The localisation term of Eq. (1) for one batch, from ONE forward pass: `rightfocus.Guide`'s.

    `images` [N, 3, H, W] (encoded), `targets` [N] the class whose attribution is guided (-1: none),
    `masks` [N, H, W] the target's box mask, `guided` [N] bool (default: every image with a target)
    which images the loss counts (rows of the others are ignored, masks included). Every image is
    attributed (an image without a target: class 0, as the reference step does), so in train-mode
    batch norm the guided images' maps do not depend on which images are guided. Returns the logits
    [N, C] of that forward pass (BCE reads them, Sec. 3.5) and the per-image loss [N] (0 where not
    guided), differentiable w.r.t. the parameters (``create_graph=True``; B-cos: forward and
    attribution inside the explanation mode, ``backward`` outside).
    """
    return guide_for(model, tap, method, loss)(images, targets.clamp_min(0), masks,
                                                  guided=_guided(targets, guided))


def guide_for(model: torch.nn.Module, tap: str, method: str, loss: str) -> Guide:
    """The `Guide` of a training run at a model tap. A method whose single-pass map is not exact on the
    model (IntGrad on a model with biases) is refused, where `Guide` only warns: a training grid never
    computes something else silently."""
    get_method(method).check(model, strict=True)
    return Guide(model, layer=tap, method=method, loss=loss)


def _guided(targets: Tensor, guided: Tensor | None) -> Tensor:
    return targets >= 0 if guided is None else guided.bool().to(targets.device) & (targets >= 0)


class GuidedStep:
    """One training step of Eq. (1): BCE (mean) + lambda * SUM over the batch of the localisation loss.

    The attribution of one random ground-truth class per image (`random_positive_class`, drawn from
    `generator`) is compared with that class's mask from `source` (`training.mask_sources`; default:
    its boxes); images whose chosen class has no mask contribute only to BCE. Targets and masks are
    built on the host from the CPU batch and copied without blocking. Stats: (loss, bce, loc), one
    count per batch. Under DDP (`model` a `DistributedTapped`, `shards` its batch sampler) each
    rank's loss is weighted so that the averaged gradient is the one-process gradient of the global
    batch, and the stats are the rank's shares of the global batch's values.
    """

    stats = ("loss", "bce", "loc")

    def __init__(self, model: torch.nn.Module, guidance: Guidance | None, generator: torch.Generator,
                 runtime: Runtime, shards: ShardedBatchSampler | None = None, source: MaskSource | None = None) -> None:
        self.model, self.guidance, self.generator, self.rt, self.shards = model, guidance, generator, runtime, shards
        self.guide = guide_for(model, guidance.tap, guidance.method, guidance.loss) if guidance is not None else None
        self.source = source if source is not None else BoxSource()

    def __call__(self, batch: dict[str, Any]) -> TrainStep:
        rt, guidance = self.rt, self.guidance
        n = len(batch["labels"])
        global_size, offset = self.shards.meta.popleft() if self.shards is not None else (n, 0)
        images = rt.inputs(batch["image"], self.model.input_encoding)
        labels = rt.to(batch["labels"])
        if self.guide is None:
            logits = self.model(images)
            loc = torch.zeros((), device=rt.device)
        else:
            targets = random_positive_class(batch["labels"], self.generator,
                                            global_size if self.shards is not None else None, offset)
            masks, use = self.source.masks(batch, batch["image"], targets)
            keep = use.nonzero().flatten()
            # targets and `use` stay on the host: Guide reads them there (no synchronisation)
            logits, per_image = self.guide(images, targets.clamp_min(0), rt.to(masks), guided=use)
            loc = per_image[rt.to(keep)].sum() if len(keep) else torch.zeros((), device=rt.device)
        bce = F.binary_cross_entropy_with_logits(full(logits), labels)
        loss = bce + (guidance.lam * loc if guidance is not None else 0.0)
        if not rt.distributed:
            # backward runs outside the explanation mode: the exact guidance gradient (scales in the graph)
            return TrainStep(loss, torch.stack([loss, bce, loc]).detach())
        # DDP averages the ranks' gradients: rank r's BCE counts n_r / global_size of the global mean,
        # its loc sum counts fully -> scale both by the world size
        share = n / global_size
        lam = guidance.lam if guidance is not None else 0.0
        return TrainStep(loss, torch.stack([share * bce + lam * loc, share * bce, loc]).detach(),
                         backward=rt.world_size * (share * bce + lam * loc))


def train_one_epoch(
    model: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    guidance: Guidance | None,
    generator: torch.Generator,
    runtime: Runtime | torch.device | str = "cpu",
    shards: ShardedBatchSampler | None = None,
    source: MaskSource | None = None,
) -> dict[str, float]:
    """One pass over `loader` with `GuidedStep` (the engine's `train_one_epoch`); returns the mean
    losses {loss, bce, loc} (under DDP those of the global batches)."""
    rt = runtime if isinstance(runtime, Runtime) else Runtime(torch.device(runtime))
    model.train()
    step = GuidedStep(model, guidance, generator, rt, shards, source)
    return engine.train_one_epoch(step, loader, optimizer, rt, GuidedStep.stats)


def _seg_masks(batch: dict[str, Any], image_index: Tensor, class_index: Tensor, binary: bool
               ) -> tuple[Tensor, Tensor] | None:
    """(pairs that have a segmentation, their object masks), or None when the batch has none.
    `binary`: the dataset is single-label (its segmentation marks the object, CUB/Waterbirds), else
    class k is marked k + 1 (`rightfocus.data.masks.object_mask`)."""
    seg = batch.get("seg")
    if seg is None or not torch.is_tensor(seg):
        return None
    seg = seg[image_index]
    has = (seg != SEG_VOID).flatten(1).any(1)  # collate fills images without one with void
    return has, object_mask(seg, class_index, multi_label=not binary)


@torch.no_grad()
def _classify(model: torch.nn.Module, images: Tensor) -> Tensor:
    return model(images)


def evaluation_step(batch: dict[str, Any], model: torch.nn.Module, pairs: Sequence[tuple[str, str]],
                    runtime: Runtime, num_groups: int | None = None, binary_seg: bool = False) -> EvalBatch:
    """Logits of one batch and, per (tap, method) in `pairs`, the maps of EVERY ground-truth class of
    every image that has a box of it, with their box masks (Sec. 3.3) and segmentations (on-object
    EPG). Forward passes and attributions under the run's autocast, maps and logits in fp32. Samples
    flagged ``invert_mask`` (Waterbirds reversed task) are scored against the complement of their
    boxes and get no on-object EPG. `binary_seg`: segmentations mark the object with 1."""
    rt = runtime
    images = rt.inputs(batch["image"], model.input_encoding)
    labels = rt.to(batch["labels"])
    groups = batch.get("group")
    with rt.autocast():
        logits = full(_classify(model, images))
    out = EvalBatch(logits, labels, torch.as_tensor(groups) if groups is not None and num_groups else None)
    for tap, method in pairs:
        with rt.autocast():
            maps, image_index, class_index = attribute_all_classes(model, images, labels, method, layer=tap)
        maps = full(maps)
        if not len(image_index):
            continue
        # pairs without a box of their class have no mask to score against
        sel = _has_box_of([batch["boxes"][i] for i in image_index.tolist()], class_index).nonzero().flatten()
        if not len(sel):
            continue
        ii, cc = image_index[sel], class_index[sel]
        invert = batch["invert_mask"][ii]
        masks = boxes_to_masks([batch["boxes"][i] for i in ii.tolist()], cc, tuple(images.shape[-2:]),
                               invert=invert).to(maps.device)
        loc = Localisation(maps[sel.to(maps.device)].detach(), masks)
        seg = _seg_masks(batch, ii, cc, binary_seg)
        if seg is not None:
            loc.on_object = (seg[0] & ~invert).to(maps.device)  # on-object EPG is undefined for inverted masks
            loc.seg = seg[1].to(maps.device)
        out.localisation[(tap, method)] = loc
    return out


def evaluate(
    model: torch.nn.Module,
    loader: Iterable[dict[str, Any]],
    pairs: Sequence[tuple[str, str]] = (),
    device: torch.device | str = "cpu",
    num_groups: int | None = None,
    binary_seg: bool = False,
    runtime: Runtime | None = None,
    iou_candidates: Sequence[float] = (),
    iou_thresholds: Mapping[tuple[str, str], float] | None = None,
    suite: Sequence[str] = (),
) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    """Classification metrics and, per (tap, method) in `pairs`, EPG / IoU / on-object EPG over
    EVERY ground-truth class of every image (Sec. 3.3; flat average over pairs): `evaluation_step`
    per batch into an `Evaluator` (the engine's `evaluate`).

    IoU threshold per pair: `iou_thresholds[pair]` when given (a test split: the value selected on
    validation), else the best of `iou_candidates` on this split (a validation split, Sec. 3.3: "selected
    via a held-out set"), else `metrics.DEFAULT_IOU_THRESHOLD`; the result's ``iou_threshold`` says which.
    Returns ``{(None, None): classification, (tap, method): classification + localisation}``. Under
    DDP each rank scores its shard and the values are gathered in rank order (= one process's
    metrics). `suite`: further registered metrics (`rightfocus.metrics.registry`) averaged over the
    same pairs.
    """
    rt = runtime if runtime is not None else Runtime(torch.device(device))
    model.eval()
    evaluator = Evaluator(pairs, num_groups=num_groups, iou_candidates=iou_candidates,
                          iou_thresholds=iou_thresholds, suite=suite)
    step = partial(evaluation_step, model=model, pairs=pairs, runtime=rt, num_groups=num_groups,
                   binary_seg=binary_seg)
    res = engine.evaluate(step, loader, evaluator, rt)
    return {(None, None) if k is None else k: v for k, v in res.items()}


def metrics_row(result: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A metrics.jsonl row of an MG `evaluate` entry plus epoch/split/tap/... fields."""
    return evaluator_rows(result, MG_COLUMNS, **fields)


# ---- the run's pieces -------------------------------------------------------------------------
def selection_metric(config: RunConfig) -> str:
    """The validation metric a baseline is chosen by: F1, or accuracy for Waterbirds (D.1.2)."""
    return "accuracy" if config.dataset == "waterbirds" else "f1"


def eval_pairs(config: RunConfig, taps: Sequence[str]) -> list[tuple[str, str]]:
    """(tap, method) pairs a run is evaluated with. Guided: its own; B-cos guided at a deeper tap also
    at the input (Fig. 8). Baselines: the native method at every tap plus GradCAM at the final tap,
    so every guided configuration has its baseline point."""
    if not config.is_baseline:
        pairs = [(str(config.tap), str(config.method))]
        if config.model_kind == "bcos" and config.tap != "input":
            pairs.append(("input", "bcos"))
        return pairs
    native = NATIVE_METHOD.get(config.model_kind)
    if native is None:
        return []
    return [(t, native) for t in taps] + [("final", "gradcam")]


def iou_candidates(config: RunConfig) -> tuple[float, ...]:
    """The IoU thresholds a run selects from on validation: ``extra.iou_thresholds``, else
    `metrics.IOU_THRESHOLDS`."""
    given = config.extra.get("iou_thresholds")
    values = tuple(float(t) for t in (IOU_THRESHOLDS if given is None else given))
    if not values or not all(0.0 <= t < 1.0 for t in values):
        raise ValueError(f"extra.iou_thresholds={given!r}: give a non-empty list of thresholds in [0, 1) "
                         "(the normalised attribution must lie strictly above one)")
    return values


def val_iou_thresholds(rows: Iterable[dict[str, Any]], epoch: int) -> dict[tuple[str, str], float]:
    """(tap, method) -> the IoU threshold selected on validation at `epoch` (from its val rows;
    `metrics.DEFAULT_IOU_THRESHOLD` where validation had no pair to select on)."""
    return {(r["tap"], r["method"]): float(r["iou_threshold"] if r.get("iou_threshold") is not None
                                           else DEFAULT_IOU_THRESHOLD)
            for r in rows if r["split"] == "val" and r["epoch"] == epoch and r.get("tap") is not None}


def _common_options(config: RunConfig, cache: bool) -> dict[str, Any]:
    """`load_dataset` options every split of the run shares."""
    common: dict[str, Any] = {"size": config.image_size, "cache": True} if cache else {"size": config.image_size}
    if config.task is not None:
        common["task"] = config.task
    common.update(config.extra.get("data_options", {}))
    return common


def eval_dataset(config: RunConfig, split: str, cache: bool = True) -> Any:
    """The run's ``val`` or ``test`` dataset as its evaluation reads it (Waterbirds validation: the
    modified validation set, Rao et al. 2023 D.1.2)."""
    from rightfocus.data import load_dataset

    options = _common_options(config, cache)
    if config.dataset == "waterbirds" and split == "val":
        options["modified_val"] = True
    return load_dataset(config.dataset, config.data_root, split, **options)


def build_datasets(config: RunConfig) -> dict[str, Any]:
    """train / val / test datasets of the run (training options on train only)."""
    from rightfocus.data import load_dataset

    train_opts = dict(_common_options(config, cache=True), annotation_fraction=config.annotation_fraction,
                      annotation_seed=int(config.extra.get("annotation_seed", 0)), dilation=config.dilation)
    if config.dataset == "waterbirds":
        train_opts["train_transform"] = config.extra.get("train_transform", True)
    return {"train": load_dataset(config.dataset, config.data_root, "train", **train_opts),
            "val": eval_dataset(config, "val"), "test": eval_dataset(config, "test")}


def _how_to_train(run_id: str, results: str | Path, profile: str) -> str:
    """A command that trains run `run_id`, with a config file that exists: the grid's (``rightfocus
    grid`` / ``launch`` write them), the run folder's (a started run), else what to write."""
    written = [store.profile_dir(results, profile) / paper / "configs" / f"{run_id}.yaml" for paper in ("mg", "aim")]
    written.append(store.run_dir(results, profile, run_id) / "config.yaml")
    found = next((p for p in written if p.is_file()), None)
    if found is not None:
        return f"`.venv/bin/rightfocus train {found}`, or `make mg`, which orders baselines first"
    return ("no config of it was found; write the baseline's config (the guided config without method / tap / loss "
            "/ lam / init_from, e.g. configs/example_baseline.yaml beside configs/example_guided.yaml), train it "
            "with `.venv/bin/rightfocus train <that file>` and set init_from to the run id it prints")


def resolve_init(config: RunConfig, results: str | Path) -> tuple[str, Path]:
    """The baseline run a guided run starts from; for a list, the best on validation (D.1.1). A run
    that starts from the initialisation (`FROM_INIT`) has none: a ValueError says so."""
    ids = config.init_run_ids
    if config.init_from == FROM_INIT:
        raise ValueError(f"run {config.run_id} starts from the initialisation (init_from: {FROM_INIT!r}), "
                         "not from a baseline run")
    if not ids:
        raise ValueError(
            f"guided run {config.run_id} needs init_from: the run id of the baseline it starts from. Train the "
            "baseline first (the same config without method / tap / loss; `.venv/bin/rightfocus train` prints its run_id) "
            "and set init_from: <that id> (see configs/example_guided.yaml)")
    metric = selection_metric(config)
    best: tuple[float, str] | None = None
    for rid in ids:
        rdir = store.run_dir(results, config.profile, rid)
        if not store.is_done(rdir):
            raise FileNotFoundError(f"baseline {rid} is not finished ({rdir}/done missing): train it first "
                                    f"({_how_to_train(rid, results, config.profile)})")
        score = float(store.read_done(rdir)["selected_val"][metric])
        if best is None or score > best[0]:
            best = (score, rid)
    assert best is not None
    return best[1], store.run_dir(results, config.profile, best[1])


def _epoch0_rows(init_dir: Path, init_epoch: int, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The baseline's own val/test rows of its selected checkpoint for `pairs`, as epoch 0 (or [])."""
    found = {(r["split"], r["tap"], r["method"]): r for r in store.read_metrics(init_dir) if r["epoch"] == init_epoch}
    want = [(split, tap, method) for split in ("val", "test") for tap, method in pairs]
    if not all(k in found for k in want):
        return []
    return [dict(found[k], epoch=0, epoch_time_s=None, checkpoint=None) for k in want]


def _val_frame(config: RunConfig, history: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(history)
    df = df[(df["split"] == "val") & (df["epoch"] >= 1)]
    if config.is_baseline:
        return df[df["tap"].isna()]
    return df[(df["tap"] == config.tap) & (df["method"] == config.method)]


def selection(config: RunConfig, history: list[dict[str, Any]]) -> tuple[list[int], int]:
    """(front epochs, selected epoch) from the validation rows so far."""
    df = _val_frame(config, history)
    metric = selection_metric(config)
    if config.is_baseline or config.dataset == "waterbirds":
        # baselines: best val F1 (accuracy); Waterbirds guided: best val accuracy too (D.1.2). The
        # modified val split (groups 0 and 3 only) is solved by the background shortcut alone, so
        # its accuracy saturates and ties are common: on Waterbirds ties go to the LATER epoch (the
        # one trained longest under guidance), elsewhere to the earlier one.
        later = config.dataset == "waterbirds"
        best = int(df.sort_values([metric, "epoch"], ascending=[False, not later]).iloc[0]["epoch"])
        return [best], best
    front = front_rows(df, ("f1", "epg", "iou"))
    base = pd.DataFrame(history)
    base_f1 = base[(base["epoch"] == 0) & (base["split"] == "val")]["f1"]
    baseline_f1 = float(base_f1.iloc[0]) if len(base_f1) else float(df["f1"].max())
    chosen = int(representative(front, baseline_f1)["epoch"])
    return sorted(int(e) for e in front["epoch"]), chosen


# ---- the task ---------------------------------------------------------------------------------
class MgTask(Task):
    """Model guidance's part of a run (see the module docstring); the engine calls it."""

    train_stats = GuidedStep.stats
    paper = "mg"

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.source: MaskSource | None = None

    def load_data(self) -> None:
        self.data = build_datasets(self.config)
        self.num_classes = int(self.data["train"].num_classes)

    def _loader(self, dataset: Any, generator: torch.Generator | None = None) -> DataLoader:
        """Training (`generator` given: the run's shuffled order; under DDP this rank's part of each
        global batch) or evaluation loader (under DDP: this rank's contiguous shard of the set)."""
        from rightfocus.data import collate

        rt = self.runtime
        opts: dict[str, Any] = {"collate_fn": collate, **rt.loader_options()}
        if rt.distributed and generator is not None:
            self.shards = ShardedBatchSampler(dataset, self.config.batch_size, generator, rt.rank, rt.world_size)
            return DataLoader(dataset, batch_sampler=self.shards, **opts)
        if rt.distributed:
            dataset = Subset(dataset, shard_range(len(dataset), rt.rank, rt.world_size))
        sampler = RandomSampler(dataset, generator=generator) if generator is not None else None
        return DataLoader(dataset, batch_size=self.config.batch_size, sampler=sampler, shuffle=False, **opts)

    def build(self, device: torch.device) -> None:
        from rightfocus.models import build_model

        c = self.config
        self.device = device
        if getattr(self, "runtime", None) is None or self.runtime.device != device:
            self.runtime = Runtime(device)
        self.shards: ShardedBatchSampler | None = None
        # baselines and runs from the initialisation start from the pretrained weights (if any); other
        # guided runs load their baseline's checkpoint in `start`
        weights = c.extra.get("weights") if c.is_baseline or c.init_from == FROM_INIT else None
        self.model = self.runtime.prepare(build_model(c.model_kind, c.arch, self.num_classes, weights=weights))
        #: what the training step runs: the model, or its DDP view (gradient all-reduce) under torchrun
        self.train_model = DistributedTapped(self.model, device) if self.runtime.distributed else self.model
        self.generators = {"data": torch.Generator().manual_seed(c.seed),
                           "classes": torch.Generator().manual_seed(c.seed + 1)}
        self.guidance = None if c.is_baseline else Guidance(str(c.method), str(c.tap), str(c.loss), c.lam)
        self.pairs = eval_pairs(c, self.model.taps)
        self.loaders = {s: self._loader(eval_subset(self.data[s], c)) for s in ("val", "test")}
        self.loaders["train"] = self._loader(self.data["train"], self.generators["data"])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr, foreach=True)  # fixed lr, no weight decay (D.1)

    def _evaluate(self, split: str, with_pairs: bool, progress: bool,
                  iou_thresholds: Mapping[tuple[str, str], float] | None = None) -> dict:
        """Evaluate `split`. Validation selects each pair's IoU threshold among `iou_candidates`;
        test applies `iou_thresholds`, the ones validation selected for the same checkpoint."""
        select = split == "val"
        return evaluate(self.model, batches(self.loaders[split], self.config, split, progress),
                        self.pairs if with_pairs else (), device=self.device,
                        num_groups=4 if self.config.dataset == "waterbirds" else None,
                        binary_seg=not dataset_spec(self.config.dataset).multi_label, runtime=self.runtime,
                        iou_candidates=iou_candidates(self.config) if select else (),
                        iou_thresholds=None if select else iou_thresholds,
                        suite=suite_for(self.config.profile))

    def _val_and_test(self, progress: bool) -> dict[str, dict]:
        """The current model on val (IoU thresholds selected there) and test (with those thresholds)."""
        val = self._evaluate("val", True, progress)
        chosen = {p: r["iou_threshold"] for p, r in val.items() if r.get("iou_threshold") is not None}
        return {"val": val, "test": self._evaluate("test", True, progress, chosen)}

    def start(self, rdir: Path, results: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Guided runs: load the baseline's selected checkpoint; epoch 0 = that baseline (the figures'
        reference). The baseline evaluated it with the same code on val and test, so its rows are
        copied when it has every pair needed. A run from the initialisation (`FROM_INIT`, built from it
        in `build`): epoch 0 = that initialisation, evaluated on val and test."""
        if self.config.is_baseline:
            return [], {}
        if self.config.init_from == FROM_INIT:
            return self._epoch0_evaluated(), {"init_from_resolved": FROM_INIT,
                                              "init_weights": self.config.extra.get("weights")}
        init_id, init_dir = resolve_init(self.config, results)
        init = ckpt.load(store.checkpoint_path(init_dir, "selected"), self.device)
        self.model.load_state_dict(init["model"])
        rows = _epoch0_rows(init_dir, int(init["epoch"]), self.pairs) or self._epoch0_evaluated()
        return rows, {"init_from_resolved": init_id, "init_epoch": int(init["epoch"])}

    def _epoch0_evaluated(self) -> list[dict[str, Any]]:
        """Epoch 0 rows of the model the run starts from, evaluated here on val and test."""
        res = self._val_and_test(False)
        return [metrics_row(res[split][p], epoch=0, split=split, tap=p[0], method=p[1], epoch_time_s=None,
                            checkpoint=None) for split in ("val", "test") for p in self.pairs]

    def train_loader(self, epoch: int) -> DataLoader:
        return self.loaders["train"]

    def on_train_epoch_start(self, epoch: int) -> None:
        if self.guidance is not None and self.source is None:
            self.source = build_mask_source(self.config, self.num_classes, self.results, self.device)
        self.train_model.train()
        self.training_step = GuidedStep(self.train_model, self.guidance, self.generators["classes"], self.runtime,
                                        self.shards, self.source)

    def validate(self, epoch: int, stats: dict[str, Any], progress: bool) -> list[dict[str, Any]]:
        res = self._evaluate("val", not self.config.is_baseline, progress)
        keys = [(None, None)] if self.config.is_baseline else self.pairs
        return [metrics_row(res[p], epoch=epoch, split="val", tap=p[0], method=p[1], checkpoint=None, **stats)
                for p in keys]

    def keep(self, history: list[dict[str, Any]]) -> set[int]:
        front, chosen = selection(self.config, history)
        return set(front) | {chosen}

    def test(self, rdir: Path, history: list[dict[str, Any]], progress: bool
             ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Test rows for the front and the selected checkpoint (baselines: every pair, val and test)."""
        c = self.config
        front, chosen = selection(c, history)
        rows: list[dict[str, Any]] = []
        for epoch in sorted(set(front) | {chosen}):
            self.model.load_state_dict(ckpt.load(rdir / "ckpt" / f"epoch_{epoch}.pt", self.device)["model"])
            # baselines validated without attributions: val here, then test with its IoU thresholds;
            # guided runs: test with the thresholds their validation of this epoch selected
            res = self._val_and_test(progress) if c.is_baseline else \
                {"test": self._evaluate("test", True, progress, val_iou_thresholds(history, epoch))}
            for split in ("val", "test") if c.is_baseline else ("test",):
                keys = [(None, None)] + list(self.pairs) if c.is_baseline and split == "test" else list(self.pairs)
                rows += [metrics_row(res[split][p], epoch=epoch, split=split, tap=p[0], method=p[1],
                                     epoch_time_s=None, checkpoint=f"epoch_{epoch}.pt") for p in keys]
        self.model.load_state_dict(ckpt.load(rdir / "ckpt" / f"epoch_{chosen}.pt", self.device)["model"])
        sel = _val_frame(c, history + rows)
        sel_row = sel[sel["epoch"] == chosen].iloc[0]
        return rows, {
            "selected_epoch": chosen,
            "front_epochs": front,
            "selected_val": {k: (None if pd.isna(sel_row.get(k)) else float(sel_row[k]))
                             for k in ("f1", "map", "epg", "iou", "accuracy") if k in sel_row},
            "eval_pairs": [list(p) for p in self.pairs],
        }
