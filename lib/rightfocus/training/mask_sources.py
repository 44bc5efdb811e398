"""Guidance signals beyond boxes: what the localisation loss compares a run's attributions with.

A mask source turns a training batch and the class drawn per image into masks [N, H, W] in [0, 1]
and says which images have one. Registered sources (`MASK_SOURCES`; ``RunConfig.mask_source``):

- ``boxes``: the union of the class's boxes (Rao et al. 2023, Sec. 3.4), complemented on samples
  flagged ``invert_mask`` (Waterbirds reversed task). The default.
- ``dilated-boxes:<p>``: the same boxes grown by int(p * box side) on each side (Sec. 5.3's coarse
  annotations, `data.boxes.dilate_boxes`).
- ``segmentation``: the class's pixels in the dataset's own segmentation (``seg``: COCO polygons via
  pycocotools' ``annToMask``, VOC's SegmentationClass PNG, i.e. the union of the class's object masks,
  CUB's bird masks for Waterbirds); void pixels (255, VOC's object borders) are 0. Images without a
  segmentation, or whose annotation the budget withheld (``annotation_fraction``), are not guided.
- ``teacher:<run>``: a trained model's input attributions (its native method: B-cos, IxG, IntGrad) for
  the same class, positive part divided by its per-image max: soft targets in [0, 1] for every image
  (no annotation read). Pair with the ``distill`` loss (or any other).
- ``aim:<run>``: an AIM run's merged mask (the mean of its stage masks after nearest upsampling,
  `models.aim.merge_masks`), bilinearly upsampled to the input: class-agnostic soft masks in [0, 1]
  for every image (AIM learns them from labels only).

``<run>`` is a run id (looked up in the same results folder and profile as the run being trained) or
a run folder. A teacher / AIM run must have the student's resolution and class set; anything else is
refused with an error naming both.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # torch is imported where masks are built: validating a RunConfig needs none
    import torch
    from torch import Tensor

    from rightfocus.runs.config import RunConfig

from rightfocus.runs.mask_spec import (  # noqa: F401  (the registry, re-exported here)
    ANNOTATION_FREE, MASK_SOURCES, SourceKind, check_mask_source, parse_mask_source, referenced_run,
)


# ---- the sources --------------------------------------------------------------------------------
class MaskSource:
    """Builds guidance masks for a batch. ``masks(batch, images, targets)`` -> (masks [N, H, W] float in
    [0, 1], has [N] bool: which images have a mask of their target class). `images` are the raw
    images [N, 3, H, W] in [0, 1] (sources that run a model encode them themselves); `targets` the
    class per image (-1: none). Masks of images without one are 0 and never read."""

    name = "boxes"

    def masks(self, batch: dict[str, Any], images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def _has_box_of(boxes: Sequence[Tensor], classes: Tensor) -> Tensor:
    import torch

    return torch.tensor([bool((b[:, 0].long() == int(c)).any()) if len(b) else False
                         for b, c in zip(boxes, classes.tolist())], dtype=torch.bool)


class BoxSource(MaskSource):
    """``boxes`` / ``dilated-boxes:<p>``."""

    def __init__(self, dilation: float = 0.0) -> None:
        self.dilation = float(dilation)
        self.name = "boxes" if not self.dilation else f"dilated-boxes:{self.dilation:g}"

    def masks(self, batch: dict[str, Any], images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        import torch

        from rightfocus.data.boxes import boxes_to_masks, dilate_boxes

        size = tuple(images.shape[-2:])
        boxes = list(batch["boxes"])
        if self.dilation:
            boxes = [dilate_boxes(b, self.dilation, size) for b in boxes]
        has = (targets >= 0) & _has_box_of(boxes, targets)
        out = torch.zeros(len(targets), *size)
        keep = has.nonzero().flatten()
        if len(keep):
            out[keep] = boxes_to_masks([boxes[i] for i in keep.tolist()], targets[keep], size,
                                       invert=batch["invert_mask"][keep])
        return out, has


class SegmentationSource(MaskSource):
    """``segmentation``: `binary` datasets mark the object with 1 (CUB / Waterbirds), the others with
    class index + 1 (VOC, COCO)."""

    name = "segmentation"

    def __init__(self, binary: bool) -> None:
        self.binary = binary

    def masks(self, batch: dict[str, Any], images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        import torch

        from rightfocus.data.collate import SEG_VOID
        from rightfocus.data.masks import object_mask

        n, size = len(targets), tuple(images.shape[-2:])
        seg = batch.get("seg")
        if seg is None or not torch.is_tensor(seg):
            return torch.zeros(n, *size), torch.zeros(n, dtype=torch.bool)
        if tuple(seg.shape[-2:]) != size:
            raise ValueError(f"segmentations are {tuple(seg.shape[-2:])} but the images {size}; the dataset must "
                             "resize both (load_dataset(..., size=...))")
        obj = object_mask(seg, targets, multi_label=not self.binary).bool()
        void = seg == SEG_VOID
        invert = batch["invert_mask"].bool()[:, None, None]
        out = torch.where(invert, ~obj, obj) & ~void
        has = (targets >= 0) & ~void.flatten(1).all(1) & obj.flatten(1).any(1)
        return out.float(), has


def class_set(config: "RunConfig") -> tuple[str, str | None]:
    """Which labels a run predicts: (loader name, task); AIM's Waterbirds releases read the
    Waterbirds loader (bird task)."""
    loader = config.dataset
    if config.paper == "aim":
        from rightfocus.data.registry import DATASETS

        loader = DATASETS.get(config.dataset, (config.dataset,))[0]
    task = config.task or ("bird" if loader == "waterbirds" else None)
    return loader, task


def _resolve_run(arg: str, results: Path, profile: str) -> Path:
    from rightfocus.runs import store

    path = Path(arg)
    rdir = path if (path / "config.yaml").is_file() else store.run_dir(results, profile, arg)
    if not store.is_done(rdir):
        raise FileNotFoundError(f"mask source run {arg!r}: {rdir} is not a finished run (no done marker); "
                                "train it first (its group, or `rightfocus train <its config.yaml>`)")
    return rdir


def _check_compatible(kind: str, source: "RunConfig", student: "RunConfig", num_classes: int,
                      student_classes: int) -> None:
    if source.image_size != student.image_size:
        raise ValueError(f"{kind} run {source.run_id} was trained at {source.image_size} px but the run it guides "
                         f"({student.run_id}) at {student.image_size} px; use a {kind} run of the same resolution")
    if class_set(source) != class_set(student) or num_classes != student_classes:
        raise ValueError(f"{kind} run {source.run_id} predicts {num_classes} classes of {class_set(source)} but the run "
                         f"it guides predicts {student_classes} of {class_set(student)}; use a {kind} run trained "
                         "on the same dataset and task")


class TeacherSource(MaskSource):
    """``teacher:<run>``: the teacher's native input attribution for the drawn class, A-hat+ in [0, 1]."""

    name = "teacher"

    def __init__(self, model: torch.nn.Module, method: str, device: torch.device | str = "cpu") -> None:
        import torch

        self.model, self.method, self.device = model.to(device).eval(), method, torch.device(device)

    def maps(self, images: Tensor, targets: Tensor) -> Tensor:
        """Teacher maps [N, H, W] in [0, 1] for raw images [N, 3, H, W] and one class each."""
        from rightfocus.attributions import attribute
        from rightfocus.data.encoding import encode
        from rightfocus.losses import normalised_positive

        x = encode(images.to(self.device), self.model.input_encoding)
        maps = attribute(self.model, x, targets.clamp_min(0).to(self.device), self.method, layer="input")
        return normalised_positive(maps.detach().float()).cpu()

    def masks(self, batch: dict[str, Any], images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return self.maps(images, targets), targets >= 0


class AimSource(MaskSource):
    """``aim:<run>``: the AIM model's merged mask / its number of stages, bilinearly upsampled."""

    name = "aim"

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu") -> None:
        import torch

        self.model, self.device = model.to(device).eval(), torch.device(device)

    def maps(self, images: Tensor) -> Tensor:
        import torch
        import torch.nn.functional as F

        from rightfocus.data.encoding import encode

        with torch.no_grad():
            out = self.model.forward_aim(encode(images.to(self.device), self.model.input_encoding))
        merged = out.merged_mask.float() / max(len(out.masks), 1)
        return F.interpolate(merged, size=images.shape[-2:], mode="bilinear")[:, 0].clamp(0, 1).cpu()

    def masks(self, batch: dict[str, Any], images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return self.maps(images), targets >= 0


def build_mask_source(config: "RunConfig", num_classes: int, results: str | Path = "results",
                      device: torch.device | str = "cpu") -> MaskSource:
    """The `MaskSource` of a run (`config.mask_source`), loading a teacher / AIM run from `results`."""
    from rightfocus.runs import store
    from rightfocus.runs.config import NATIVE_METHOD

    name, arg = parse_mask_source(config.mask_source)
    if name in ("boxes", "dilated-boxes"):
        return BoxSource(float(arg) if arg else 0.0)
    if name == "segmentation":
        from rightfocus.data.registry import dataset_spec

        return SegmentationSource(binary=not dataset_spec(class_set(config)[0]).multi_label)
    assert arg is not None
    rdir = _resolve_run(arg, Path(results), config.profile)
    model, source = store.load_checkpoint(rdir, "selected", device="cpu")
    k = int(store.load_torch(store.checkpoint_path(rdir, "selected"))["num_classes"])
    _check_compatible(name, source, config, k, num_classes)
    if name == "aim":
        if not hasattr(model, "forward_aim"):
            raise ValueError(f"mask_source {config.mask_source!r}: run {source.run_id} is not an AIM model (kind "
                             f"{source.model_kind!r}); name an AIM run")
        return AimSource(model, device)
    method = NATIVE_METHOD.get(source.model_kind)
    if method is None:
        raise ValueError(f"teacher run {source.run_id} (kind {source.model_kind!r}) has no native input attribution; "
                         f"use a vanilla, X-DNN or B-cos run")
    return TeacherSource(model, method, device)

