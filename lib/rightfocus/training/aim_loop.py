"""AIM training and evaluation (Alshami et al. 2025, Sec. 3-4 and App. A): one run = one RunConfig
with ``paper="aim"`` (settings: `rightfocus.aim_options.AimOptions`, read from ``config.extra``).

Loss (Eq. 7): the classification losses of the final classifier and, unless ``aux_losses`` is off
(Table 12), of every top-down stage's classifier (label smoothing, Table 4), plus ``lam`` (6) times the
active-area losses of the stage masks (Eq. 6) with the threshold annealed from 1.0 to ``tau``
(App. A.3, Fig. 9). ``tau = None`` ("no annealing") means no mask loss at all (Table 15: "without any sparsity loss").

Optimiser: AdamW with two parameter groups, the (pretrained) backbone at ``config.lr`` (Table 5) and
everything else (top-down pathway, mask estimators, classifiers) at ``topdown_lr`` (Table 4), weight
decay, cosine schedule over all steps. RandAugment(ops, magnitude) on training images only; AIM trains
on labels alone, so its geometric ops (shear, translate, rotate) are kept and boxes/segmentations are
never augmented (they are read only on val/test, which are not augmented).

Images: training images resized whole to the run's resolution; validation and test images
centre-cropped (shorter side to resolution / 0.875, then the centre crop: `load_split`); the
shifted-centre test (A.6) crops the whole test images around displaced centres instead.

Validation = ``val_fraction`` (20 %) of the training split, drawn with the run's seed. The selected
checkpoint is the epoch with the best validation accuracy (ties: the later epoch); the test split is
evaluated for it: accuracy, per-group / worst-group accuracy (Waterbirds: minimum over the 4 groups),
GradCAM EPG for the ground-truth class against the segmentation (boxes where there is none), at the
feature map the final classifier reads for AIM and at the last backbone stage for plain backbones
(``gradcam_at``), Guided GradCAM / Guided Backprop EPG (``guided_eval``, Table 8), mask sparsity
(share of active elements, Table 15), per-sample EPG (``per_sample.csv``, Fig. 5), examples of fixed
images (``examples.pt``, Figs. 3/6/11-24) and, for CUB, the shifted-center test (A.6, Table 3/7).
Masks of the fixed test images are stored every epoch (``masks/epoch_<e>.pt``, Fig. 7).

This module is AIM's `Task` for the run engine (`training.engine`: lock, resume, checkpoints,
metrics file, ``done``, the step loops): its training step (`AimStep`) and evaluation step
(`evaluation_step`, scored by `training.evaluator.Evaluator`); every epoch re-seeds torch from (seed,
epoch), and the engine restores the RNG state on resume, so a resumed run equals an uninterrupted
one. `training.runner.train_run` runs it.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from rightfocus.attributions.methods import INPUT_ONLY, get_method
from rightfocus.data import collate  # the shared batching (tensors stacked, the rest as lists)
from rightfocus.runs import store
from rightfocus.aim_options import AIM_EXTRA_DEFAULTS, EVAL_CENTER_CROP, AimOptions
from rightfocus.data.masks import object_mask
from rightfocus.data.registry import DATASETS
from rightfocus.models.backbones import pretrained_files
from rightfocus.runs.config import RunConfig
from rightfocus.metrics import suite_for
from rightfocus.models.aim_plain import PlainBackbone
from rightfocus.models.taps import TappedModel
from rightfocus.training import checkpoint as ckpt
from rightfocus.training import engine
from rightfocus.training.engine import Task, TrainStep, batches, eval_subset, steps_per_epoch
from rightfocus.training.evaluator import AIM_COLUMNS, EvalBatch, Evaluator, Localisation, metrics_row
from rightfocus.training.runtime import Runtime, full


def aim_options(config: RunConfig) -> dict[str, Any]:
    """Deprecated: the run's AIM settings as a dict; use ``AimOptions.from_config(config)``."""
    warnings.warn("aim_options(config) is deprecated; use rightfocus.aim_options.AimOptions.from_config(config)",
                  DeprecationWarning, stacklevel=2)
    AimOptions.from_config(config)  # validates
    return {**AIM_EXTRA_DEFAULTS, **config.extra}


# ----------------------------------------------------------------------------- model


def model_options(config: RunConfig) -> dict[str, Any]:
    """Keyword options that rebuild this run's model (stored in its checkpoints)."""
    opts = AimOptions.from_config(config)
    # drop path (Table 4) is ConvNeXt's stochastic depth; ResNets have none
    drop = {"drop_path": opts.drop_path} if "convnext" in config.arch else {}
    if config.model_kind != "aim":
        return drop
    noise = {"noise_off_fraction": opts.noise_off_fraction}
    if opts.direction == "bottom_up":
        return {"direction": "bottom_up", "masked_blocks": tuple(opts.blocks or ()), "edge_init": opts.edge_init,
                **noise, **drop}
    return {"stage": opts.stage, "aux_losses": opts.aux_losses, "single_mask": opts.single_mask,
            "edge_init": opts.edge_init, "dropout": opts.dropout, **noise, **drop}


def _weights_file(config: RunConfig) -> str | None:
    opts = AimOptions.from_config(config)
    if not opts.pretrained:
        return None
    if opts.weights:
        return opts.weights
    files = pretrained_files("aim")
    if config.arch not in files:
        raise ValueError(f"no ImageNet weights are known for arch {config.arch!r}; set extra "
                         f"pretrained=False or extra weights=<file>")
    from rightfocus.models.weights import resolve_weights

    return str(resolve_weights(files[config.arch]))  # $WEIGHTS_ROOT; never downloaded


def build_run_model(config: RunConfig, num_classes: int, pretrained: bool = True) -> TappedModel:
    """The run's classifier: ``build_model("aim", ...)`` with ImageNet backbone weights, or the plain
    backbone (`PlainBackbone`). ``pretrained=False`` skips the weights (rebuilding from a checkpoint)."""
    weights = _weights_file(config) if pretrained else None
    if config.model_kind == "aim":
        from rightfocus.models import build_model

        return build_model("aim", config.arch, num_classes, backbone_weights=weights, **model_options(config))
    if config.model_kind != "vanilla":
        raise ValueError(f"AIM runs use model_kind 'aim' or 'vanilla', got {config.model_kind!r}")
    return PlainBackbone(config.arch, num_classes, weights, **model_options(config))


@dataclass
class AimForward:
    """What one forward pass gives the loop (plain backbones: no aux logits, no masks)."""

    logits: Tensor
    aux_logits: list[Tensor]
    masks: list[Tensor]
    merged: Tensor | None


def forward(model: nn.Module, x: Tensor) -> AimForward:
    """Final logits, per-stage aux logits and binary masks from one forward pass."""
    if hasattr(model, "forward_aim"):
        out = model.forward_aim(x)
        return AimForward(out.logits, list(out.stage_logits.values()), list(out.masks.values()),
                          out.merged_mask)
    return AimForward(model(x), [], [], None)


def gradcam_layer(model: nn.Module, at: str = "classifier_input") -> str:
    """The tap GradCAM reads: for AIM the feature map its final classifier reads (``classifier_input``)
    or its last backbone stage (``backbone``); for plain backbones always the last stage (``final``)."""
    if at not in ("classifier_input", "backbone"):
        raise ValueError(f"gradcam_at={at!r}; use 'classifier_input' or 'backbone'")
    if getattr(model, "kind", "vanilla") == "aim" and at == "classifier_input":
        return model.classifier_tap  # the map the final classifier reads (models/aim.py)
    return "final"


# ----------------------------------------------------------------------------- data


def load_split(config: RunConfig, split: str, center_crop: bool = True) -> Dataset:
    """The run's dataset `split` ("train" or "test"; the ImageNet subsets' test is their "val" folder)
    at ``config.image_size``: evaluated images centre-cropped (`EVAL_CENTER_CROP`: the shorter side
    resized to image_size / 0.875, then the centre crop, as torchvision's evaluation recipe; AIM Sec.
    6.2 and App. A.6 evaluate "center-cropped images" without stating the resize), or, with
    ``center_crop=False``, the whole image resized to image_size x image_size (training images, and
    the base of the shifted-centre crops). Boxes and segmentations move with the image."""
    from rightfocus.data import load_dataset

    if config.dataset not in DATASETS:
        raise ValueError(f"unknown AIM dataset {config.dataset!r}; use one of {list(DATASETS)}")
    name, _, options = DATASETS[config.dataset]
    # decoded images stay in memory for the next epochs (as MG's; `BoxDataset.cache`, bounded per process)
    options = {**options, "cache": True}
    if split == "test" and name in ("imagefolder", "hardimagenet"):
        split = "val"  # ImageNet: val is the test
    crop = {"center_crop": EVAL_CENTER_CROP} if center_crop else {}
    return load_dataset(name, config.data_root, split, size=config.image_size, **crop, **options)


def load_splits(config: RunConfig) -> tuple[Dataset, Dataset, Dataset, int]:
    """(train, val, test, num_classes): val is ``val_fraction`` of the training split (seeded). Training
    images are resized whole (`load_split` with ``center_crop=False``; RandAugment follows), val and
    test images are centre-cropped (`load_split`)."""
    full = load_split(config, "train", center_crop=False)
    evaluated = load_split(config, "train")  # the same images, as evaluation sees them
    test = load_split(config, "test")
    n = len(full)
    n_val = max(1, int(round(AimOptions.from_config(config).val_fraction * n)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed)).tolist()
    val, train = Subset(evaluated, sorted(perm[:n_val])), Subset(full, sorted(perm[n_val:]))
    num_classes = int(full[0]["labels"].numel())
    return train, val, test, num_classes


class RandAugmented(Dataset):
    """Applies torchvision's RandAugment to the image of every sample (and to nothing else)."""

    def __init__(self, dataset: Dataset, ops: int, magnitude: int) -> None:
        from torchvision.transforms import v2

        self.dataset = dataset
        self.augment = v2.RandAugment(num_ops=int(ops), magnitude=int(magnitude))

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = dict(self.dataset[i])
        img = (sample["image"] * 255).round().to(torch.uint8)  # RandAugment's colour ops need uint8
        sample["image"] = self.augment(img).float() / 255
        return sample


def targets_of(batch: dict[str, Any]) -> Tensor:
    """Class indices from one-hot (or index) labels."""
    labels = batch["labels"]
    return labels.argmax(1) if labels.dim() == 2 else labels.long()


def object_masks(batch: dict[str, Any], targets: Tensor, size: Sequence[int]) -> Tensor:
    """[N, H, W] float masks of the ground-truth object: the segmentation (object = id > 0, 255 = void
    counts as background) where the dataset has one, else the union of the target class's boxes."""
    seg = batch.get("seg")
    if seg is not None and not isinstance(seg, list):
        return object_mask(seg, targets, multi_label=False)
    if isinstance(seg, list) and all(s is not None for s in seg):
        return torch.stack([object_mask(s, int(t), multi_label=False) for s, t in zip(seg, targets)])
    from rightfocus.data.boxes import boxes_to_masks

    return boxes_to_masks(list(batch["boxes"]), targets, tuple(int(s) for s in size)).float()


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _encode(model: nn.Module, images: Tensor) -> Tensor:
    """Images on the model's device, encoded for it (ImageNet normalisation)."""
    from rightfocus.data.encoding import encode

    return encode(images.to(_device(model), non_blocking=True), getattr(model, "input_encoding", "imagenet"))


# ----------------------------------------------------------------------------- loss


def aim_loss(fw: AimForward, targets: Tensor, tau: float | None, lam: float, label_smoothing: float,
             aux_losses: bool = True) -> tuple[Tensor, dict[str, float]]:
    """`aim_loss_terms` with the parts as floats (one host synchronisation; the training loop keeps
    the tensors)."""
    total, parts = aim_loss_terms(fw, targets, tau, lam, label_smoothing, aux_losses)
    return total, {k: float(v) for k, v in parts.items()}


def aim_loss_terms(fw: AimForward, targets: Tensor, tau: float | None, lam: float, label_smoothing: float,
                   aux_losses: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 7: sum of the classification losses (final + per-stage aux when `aux_losses`) plus
    ``lam * active_area_loss(masks, tau)`` (Eq. 6); no mask term when `tau` is None or no masks."""
    from rightfocus.losses import active_area_loss

    cls = F.cross_entropy(fw.logits, targets, label_smoothing=label_smoothing)
    if aux_losses:
        for aux in fw.aux_logits:
            cls = cls + F.cross_entropy(aux, targets, label_smoothing=label_smoothing)
    mask = torch.zeros((), device=cls.device)
    if tau is not None and fw.masks:
        mask = active_area_loss(fw.masks, tau)
    total = cls + lam * mask
    return total, {"loss": total.detach(), "cls_loss": cls.detach(), "mask_loss": mask.detach()}


def threshold_at(options: AimOptions | Mapping[str, Any], epoch: int) -> float | None:
    """The active-area threshold of 1-based training `epoch` (App. A.3; None = no mask loss).
    `options`: the run's `AimOptions` (or an ``extra`` dict of them)."""
    from rightfocus.losses import area_threshold

    if not isinstance(options, AimOptions):
        options = AimOptions.from_extra(options)
    if options.tau is None:
        return None
    return area_threshold(epoch - 1, options.anneal_start, options.anneal_epochs, options.tau)


def active_share(masks: Sequence[Tensor]) -> list[float]:
    """Share of active elements of each stage mask (Table 15's sparsity score, as a fraction)."""
    return [float(m.detach().float().mean()) for m in masks]


def build_optimizer(model: nn.Module, config: RunConfig, steps: int
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with the backbone at ``config.lr`` and the rest at ``topdown_lr``; cosine over `steps`."""
    opts = AimOptions.from_config(config)
    backbone_ids = {id(p) for p in backbone_parameters(model)}
    backbone = [p for p in model.parameters() if id(p) in backbone_ids]
    rest = [p for p in model.parameters() if id(p) not in backbone_ids]
    groups = [{"params": backbone, "lr": config.lr}]
    if rest:
        groups.append({"params": rest, "lr": opts.topdown_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=opts.weight_decay, foreach=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    return optimizer, scheduler


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of the (pretrained) bottom-up backbone: the model's ``stages``, or its own
    ``backbone_parameters()`` when it defines one."""
    if hasattr(model, "backbone_parameters"):
        return list(model.backbone_parameters())
    if hasattr(model, "stages"):
        return list(model.stages.parameters())
    return list(model.parameters())


# ----------------------------------------------------------------------------- epochs


def _seed_epoch(config: RunConfig, epoch: int) -> torch.Generator:
    torch.manual_seed(config.seed * 100_003 + epoch)
    return torch.Generator().manual_seed(config.seed * 100_003 + epoch)


def _set_epoch(model: nn.Module, epoch: int, total: int) -> None:
    if hasattr(model, "set_epoch"):
        model.set_epoch(epoch - 1, total)  # 0-based for the Gumbel schedule


class AimStep:
    """One training step of Eq. 7 (forward and loss under the run's autocast, the losses in fp32).
    Stats: (loss, cls_loss, mask_loss) summed per image; `shares` collects the training masks'
    activity per step."""

    stats = ("loss", "cls_loss", "mask_loss")

    def __init__(self, model: nn.Module, options: AimOptions, tau: float | None, lam: float, runtime: Runtime) -> None:
        self.model, self.options, self.tau, self.lam, self.rt = model, options, tau, lam, runtime
        self.shares: list[Tensor] = []

    def __call__(self, batch: dict[str, Any]) -> TrainStep:
        rt, opts = self.rt, self.options
        x = rt.inputs(batch["image"], getattr(self.model, "input_encoding", "imagenet"))
        targets = rt.to(targets_of(batch))
        fw = forward(self.model, x)
        fp32 = AimForward(full(fw.logits), [full(a) for a in fw.aux_logits], [full(m) for m in fw.masks],
                          fw.merged)  # losses in fp32 under autocast; a no-op in fp32
        loss, parts = aim_loss_terms(fp32, targets, self.tau, self.lam, opts.label_smoothing, opts.aux_losses)
        if fw.masks:
            self.shares.append(torch.stack([m.detach().float().mean() for m in fw.masks]))
        return TrainStep(loss, torch.stack([parts[k] for k in self.stats]).double() * len(targets), len(targets))

    def epoch_stats(self, means: dict[str, float]) -> dict[str, Any]:
        """The epoch's mean losses, the threshold and the training mask activity."""
        out: dict[str, Any] = {f"train_{k}": means[k] for k in self.stats}
        out["tau"] = self.tau
        if self.shares:
            out["train_mask_active"] = float(torch.stack(self.shares).mean())
        return out


def _epoch_step(model: nn.Module, config: RunConfig, epoch: int, runtime: Runtime) -> AimStep:
    """The training step of 1-based `epoch` (threshold of App. A.3), with the model in training mode."""
    opts = AimOptions.from_config(config)
    tau = threshold_at(opts, epoch) if config.model_kind == "aim" else None
    model.train()
    return AimStep(model, opts, tau, config.lam, runtime)


def train_one_epoch(model: nn.Module, loader: Iterable[dict[str, Any]], optimizer: torch.optim.Optimizer,
                    scheduler: Any, config: RunConfig, epoch: int, runtime: Runtime | None = None) -> dict[str, Any]:
    """One epoch of Eq. 7 (`AimStep` in the engine's `train_one_epoch`); returns mean losses, the
    threshold and the training mask activity."""
    rt = runtime if runtime is not None else Runtime(_device(model))
    step = _epoch_step(model, config, epoch, rt)
    means = engine.train_one_epoch(step, loader, optimizer, rt, AimStep.stats, scheduler)
    return step.epoch_stats(means)


def evaluation_step(batch: dict[str, Any], model: nn.Module, layer: str, methods: Sequence[str]) -> EvalBatch:
    """Logits, masks and, per attribution method, the ground-truth class's map against the object
    mask (`object_masks`) of one batch, in fp32. GradCAM and Guided GradCAM read `layer`, Guided
    Backprop the input."""
    from rightfocus.attributions import attribute

    x = _encode(model, batch["image"])
    targets = targets_of(batch).to(x.device)
    with torch.no_grad():
        fw = forward(model, x)
    groups = torch.as_tensor(batch["group"]).reshape(-1) if "group" in batch else None
    index = torch.as_tensor(batch.get("index", torch.arange(len(targets)))).reshape(-1)
    masks = object_masks(batch, targets.cpu(), x.shape[-2:]).to(x.device)
    loc = {m: Localisation(attribute(model, x, targets, m, layer="input" if get_method(m).taps == INPUT_ONLY else layer).detach(),
                           masks) for m in methods}
    return EvalBatch(fw.logits, targets, groups, index, loc, fw.masks, fw.merged)


def evaluate(model: nn.Module, loader: Iterable[dict[str, Any]], *, gradcam_at: str = "classifier_input",
             methods: Sequence[str] = ("gradcam",), num_groups: int | None = None,
             per_sample: bool = False, suite: Sequence[str] = ()
             ) -> tuple[dict[str | None, dict[str, Any]], list[dict[str, Any]]]:
    """Accuracy, group accuracies, mask activity and EPG per attribution method on `loader`
    (`evaluation_step` into an `Evaluator`, without IoU).

    Returns ({method: metrics} (no methods: {None: metrics}), per-sample rows). `suite`: further
    registered metrics (`rightfocus.metrics.registry`) of the same maps and masks, averaged per
    method like EPG.
    """
    model.eval()
    evaluator = Evaluator(methods, num_groups=num_groups, iou=False, suite=suite)
    step = partial(evaluation_step, model=model, layer=gradcam_layer(model, gradcam_at), methods=methods)
    res = engine.evaluate(step, loader, evaluator)
    summary = {m: res[m] for m in methods} if methods else {None: res[None]}
    return summary, evaluator.per_sample() if per_sample else []


def fixed_indices(dataset: Dataset, n: int) -> list[int]:
    """The same `n` test positions for every run on a dataset (seed 0), for qualitative figures."""
    perm = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))  # type: ignore[arg-type]
    return perm[: min(n, len(perm))].tolist()


def examples(model: nn.Module, dataset: Dataset, positions: Sequence[int],
             gradcam_at: str = "classifier_input") -> dict[str, Any]:
    """Images, object masks, predictions, GradCAM maps with EPG and the AIM masks of fixed images."""
    from rightfocus.attributions import attribute
    from rightfocus.metrics import epg

    batch = collate([dataset[i] for i in positions])
    model.eval()
    x = _encode(model, batch["image"])
    targets = targets_of(batch).to(x.device)
    with torch.no_grad():
        fw = forward(model, x)
    maps = attribute(model, x, targets, "gradcam", layer=gradcam_layer(model, gradcam_at)).detach()
    masks = object_masks(batch, targets.cpu(), x.shape[-2:]).to(x.device)
    return {
        "positions": list(positions), "index": torch.as_tensor(batch.get("index", torch.tensor(positions))),
        "image": batch["image"], "object": masks.cpu(), "label": targets.cpu(), "pred": fw.logits.argmax(1).cpu(),
        "gradcam": maps.cpu(), "epg": epg(maps, masks).cpu(),
        "stage_masks": [m.detach().bool().cpu() for m in fw.masks],
        "stages": list(_mask_stages(model, x)),
        "merged": None if fw.merged is None else fw.merged.detach().cpu(),
    }


# ----------------------------------------------------------------------------- run


def _mask_stages(model: nn.Module, x: Tensor) -> list[int]:
    """Stage numbers of the masks, top stage first (the keys of AimOutput.masks)."""
    with torch.no_grad():
        return list(model.forward_aim(x[:1]).masks.keys()) if hasattr(model, "forward_aim") else []


def _store_masks(model: nn.Module, test: Dataset, fixed: Sequence[int], rdir: Path, epoch: int) -> None:
    """Masks of the fixed test images at `epoch` (Fig. 7); images once in ``masks/images.pt``."""
    if getattr(model, "kind", "vanilla") != "aim" or not fixed:
        return
    batch = collate([test[i] for i in fixed])
    if not (rdir / "masks" / "images.pt").exists():
        store.atomic_torch_save({"positions": list(fixed), "image": batch["image"]}, rdir / "masks" / "images.pt")
    model.eval()
    x = _encode(model, batch["image"])
    with torch.no_grad():
        fw = forward(model, x)
    store.atomic_torch_save({"epoch": epoch, "stage_masks": [m.bool().cpu() for m in fw.masks],
                             "stages": list(_mask_stages(model, x)),
                             "merged": None if fw.merged is None else fw.merged.cpu()},
                            rdir / "masks" / f"epoch_{epoch}.pt")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    store.atomic_write_text(path, buf.getvalue())


# ----------------------------------------------------------------------------- the task


class AimTask(Task):
    """AIM's part of a run (see the module docstring); the engine (`training.engine.run`) calls it."""

    train_stats = AimStep.stats
    paper = "aim"

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.opts = AimOptions.from_config(config)

    def load_data(self) -> None:
        self.train, self.val, self.test_set, self.num_classes = load_splits(self.config)

    def _loader(self, dataset: Dataset, persistent: bool = True, **kw: Any) -> DataLoader:
        opts = self.runtime.loader_options()
        if not persistent:  # a loader made anew each epoch must not keep its workers
            opts.pop("persistent_workers", None)
        return DataLoader(dataset, batch_size=self.config.batch_size, collate_fn=collate, **opts, **kw)

    def build(self, device: torch.device) -> None:
        c, opts = self.config, self.opts
        if getattr(self, "runtime", None) is None or self.runtime.device != device:
            self.runtime = Runtime(device)
        if self.runtime.distributed:
            raise NotImplementedError(
                "AIM runs train on one process (WORLD_SIZE=1); multi-GPU (torchrun) is implemented for model "
                "guidance runs (paper 'mg'). Run AIM without torchrun, one GPU per run")
        self.model = self.runtime.prepare(build_run_model(c, self.num_classes))
        self.train_set = RandAugmented(self.train, *opts.randaugment) if opts.randaugment else self.train
        steps = steps_per_epoch(-(-len(self.train_set) // c.batch_size), c)
        self.optimizer, self.scheduler = build_optimizer(self.model, c, steps * c.epochs)
        num_groups = DATASETS[c.dataset].num_groups
        self.eval_kw = {"gradcam_at": opts.gradcam_at, "num_groups": num_groups}
        self.val_loader = self._loader(eval_subset(self.val, c))
        self.tap = gradcam_layer(self.model, opts.gradcam_at)
        self.fixed = fixed_indices(self.test_set, opts.fixed_images)

    def model_options(self) -> dict[str, Any]:
        return model_options(self.config)

    def train_loader(self, epoch: int) -> DataLoader:
        """Epoch `epoch`'s shuffled batches; torch is re-seeded from (seed, epoch) and the model's
        Gumbel noise schedule set to the epoch first."""
        c = self.config
        gen = _seed_epoch(c, epoch)
        _set_epoch(self.model, epoch, c.epochs)
        return self._loader(self.train_set, persistent=False, shuffle=True, generator=gen,
                            drop_last=len(self.train_set) > c.batch_size)

    def on_train_epoch_start(self, epoch: int) -> None:
        self.training_step = _epoch_step(self.model, self.config, epoch, self.runtime)

    def on_train_epoch_end(self, epoch: int, means: dict[str, float]) -> dict[str, Any]:
        return {"lr": self.scheduler.get_last_lr()[0], **self.training_step.epoch_stats(means)}

    def validate(self, epoch: int, stats: dict[str, Any], progress: bool) -> list[dict[str, Any]]:
        """Accuracy and masks every epoch (selection); EPG only where figures need it (test)."""
        metrics, _ = evaluate(self.model, batches(self.val_loader, self.config, "val", progress), methods=(),
                              **self.eval_kw)
        return [metrics_row(metrics[None], AIM_COLUMNS, epoch=epoch, split="val", tap=None, method=None,
                            checkpoint=None, **stats)]

    def keep(self, history: list[dict[str, Any]]) -> set[int]:
        """The epoch with the best validation accuracy (ties: the later epoch)."""
        val = [r for r in history if r["split"] == "val"]
        return {max(val, key=lambda r: (r["accuracy"], r["epoch"]))["epoch"]} if val else set()

    def after_epoch(self, rdir: Path, epoch: int) -> None:
        _store_masks(self.model, self.test_set, self.fixed, rdir, epoch)

    def test(self, rdir: Path, history: list[dict[str, Any]], progress: bool
             ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Test metrics of the selected checkpoint, per-sample EPG, examples (and the shifted test)."""
        c, opts, model = self.config, self.opts, self.model
        (sel,) = self.keep(history)
        model.load_state_dict(ckpt.load(rdir / "ckpt" / f"epoch_{sel}.pt", _device(model))["model"])
        methods = ["gradcam"] + (["guided_gradcam", "guided_backprop"] if opts.guided_eval else [])
        test = eval_subset(self.test_set, c)
        summary, per_sample = evaluate(model, batches(self._loader(test), c, "test", progress), methods=methods,
                                       per_sample=True, suite=suite_for(c.profile), **self.eval_kw)
        rows = [metrics_row(summary[m], AIM_COLUMNS, epoch=sel, split="test",
                            tap="input" if get_method(m).taps == INPUT_ONLY else self.tap, method=m,
                            checkpoint=f"epoch_{sel}.pt") for m in methods]
        _write_csv(rdir / "per_sample.csv", per_sample)
        store.atomic_torch_save(examples(model, self.test_set, self.fixed, opts.gradcam_at), rdir / "examples.pt")
        if opts.shifted_offset is not None:
            from rightfocus.data.shifted_crop import ShiftedCenterCrop

            # the shifted-centre crops (App. A.6) replace the centre crop: cut from the whole test images
            shifted = ShiftedCenterCrop(load_split(c, "test", center_crop=False), opts.shifted_offset, seed=0)
            s_summary, _ = evaluate(model, batches(self._loader(eval_subset(shifted, c)), c, "test_shifted", progress),
                                    **self.eval_kw)
            rows.append(metrics_row(s_summary["gradcam"], AIM_COLUMNS, epoch=sel, split="test_shifted", tap=self.tap,
                                    method="gradcam", checkpoint=f"epoch_{sel}.pt", shifted_offset=opts.shifted_offset))
            store.atomic_torch_save(examples(model, shifted, self.fixed, opts.gradcam_at),
                                    rdir / "examples_shifted.pt")
        test_m = summary["gradcam"]
        return rows, {"selected_epoch": sel, "front_epochs": [sel], "selection": "best validation accuracy",
                      "test_accuracy": test_m["accuracy"], "test_worst_group_acc": test_m.get("worst_group_accuracy"),
                      "test_epg": test_m["epg"], "num_classes": self.num_classes}
