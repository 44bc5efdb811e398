"""AIM: top-down self-supervised masking (Alshami et al. 2025, Sec. 3, Fig. 2, App. A.2, D.2-D.5).

A torchvision backbone (bottom-up pathway, stages S_l) feeds a top-down pathway. For every stage
l from the last one L down to the chosen stage T (``stage=T``):

- ``O_l = T_l(S_l) * B_l`` (Eq. 3), with ``B_l = G(M(S_l))`` (Eqs. 1-2): `TopDownBranch` T_l,
  `MaskEstimator` M, `BinaryGumbel` G;
- ``y_l = f_l(O_l)`` (Eq. 4): per-stage (auxiliary) classifier on the stage's own masked map,
  "before merging with higher-stage feature maps";
- the running sum is nearest-upsampled to stage l's resolution and added: ``P_L = O_L``,
  ``P_l = O_l + up(P_{l+1})``; ``O_final = P_T`` and ``y_final = f_final(O_final)`` (Eq. 5).

Choices where the paper is silent (listed in the project report):

- top-down width (channels of T_l) 256 and mask-estimator width 32: with these the parameter
  counts of Table 6 are matched (see `complexity`, `measure_table6`);
- one classifier per top-down stage plus the final classifier (Eq. 7 sums the stage losses;
  ``aux_losses=False`` keeps only the final classifier, Table 12); classifiers are global average
  pooling + dropout + linear; the backbone's own classifier is dropped;
- the mask estimator's residual blocks are ResNet basic blocks (BatchNorm, ReLU); its last 1x1
  conv keeps PyTorch's default (random) init, so masks start about half active;
- the final classifier's loss is not written in Eq. 7; the training step should add it to the
  per-stage losses (``AimOutput.stage_logits``) and the mask losses (``AimOutput.estimated_masks``);
- ``single_mask=True`` (Table 13): only stage L has a mask estimator; its mask is
  nearest-upsampled to each lower stage's resolution;
- the merged mask (Figs. 6, 8) is DynConv's visualisation: the sum of the per-stage binary masks
  after nearest upsampling to the largest of them (values 0 .. number of masks);
- bottom-up variant (``direction="bottom_up"``, Sec. 6.1, App. D.4, Fig. 28): the masked stages'
  outputs are multiplied by a binary mask predicted from the stage's INPUT (DynConv's mask unit;
  the estimator's first conv carries the stage's stride), without the skip connection that would
  make them dense again; the backbone's own classifier reads the last stage;
- edge-emphasised init (``edge_init=True``, App. D.5): every 3x3 kernel of the mask estimators
  is multiplied by `edge_emphasis_filter` (rescaled to unit RMS); the paper gives no formula;
- stage numbers: ConvNeXt S0-S3; ResNet stem = 0, layer i = i (the paper does not number them; this choice), so ResNet-50+AIM[2]
  reads layer4, layer3, layer2 and ConvNeXt+AIM[1] reads S3, S2, S1 (Sec. 4).

Taps: ``input, mid1, mid2, mid3, final`` are the backbone stages (taps.py) and ``aim`` is the map
the final classifier reads (``O_final``; for the bottom-up variant the masked last stage, i.e. the
same tensor as ``final``), also the output of the identity module ``model.aim_tap`` for hook-based
tools. ``model.head`` maps the ``aim`` tap to the logits, so GradCAM at
``aim`` explains the final classifier (`classifier_tap`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from .aim_backbones import NumberedBackbone, build_backbone, build_torchvision
from .backbones import buildable
from .aim_parts import (GUMBEL_SCHEDULES, BinaryGumbel, MaskEstimator, StageClassifier, TopDownBranch,
                        apply_edge_init, edge_emphasis_filter, gumbel_schedule)
from .registry import count_parameters, register_kind
from .taps import TappedModel

__all__ = [
    "AimOutput", "AimModel", "BottomUpAimModel", "build_aim", "complexity", "measure_table6",
    "merge_masks", "edge_emphasis_filter", "apply_edge_init", "gumbel_schedule", "BinaryGumbel",
    "AIM_ARCHS", "TOP_DOWN_WIDTH", "MASK_WIDTH", "SMALL_WIDTHS", "CLASSIFIER_TAP", "TABLE6_MODELS",
]

def __getattr__(name: str) -> Any:
    if name == "AIM_ARCHS":  # the backbones AIM builds, now (`BACKBONES` entries with a stage cut)
        return buildable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: channels of the top-down pathway (chosen to match Table 6's parameter counts)
TOP_DOWN_WIDTH = 256
#: channels inside the mask estimators (chosen with TOP_DOWN_WIDTH, see above)
MASK_WIDTH = 32
#: (top-down width, mask-estimator width) per arch where it differs from the above: the test/demo
#: backbones (widths 16-128) get a pathway of their own scale
SMALL_WIDTHS: dict[str, tuple[int, int]] = {"tiny": (32, 8), "tiny_convnext": (32, 8)}
#: the tap the final classifier reads
CLASSIFIER_TAP = "aim"


@dataclass
class AimOutput:
    """Everything one AIM forward pass yields.

    ``logits``: final classifier [N, K]. ``stage_logits``: stage number -> [N, K] auxiliary
    logits (empty without aux losses or for the bottom-up variant). ``masks``: stage number ->
    binary mask [N, 1, h_l, w_l] (straight-through: it carries the soft gradient in training, so
    the active-area loss of Eq. 6 can be computed from it). ``mask_logits``: stage number ->
    estimator output A_l (Eq. 1) [N, 1, h_l, w_l] (the upsampled top mask's logits are not
    repeated for ``single_mask``). ``merged_mask``: [N, 1, H, W], sum of the masks after nearest
    upsampling to the largest (``merge_masks``). ``taps``: the activations asked for.
    Dicts are ordered top stage first.
    """

    logits: Tensor
    stage_logits: dict[int, Tensor] = field(default_factory=dict)
    masks: dict[int, Tensor] = field(default_factory=dict)
    mask_logits: dict[int, Tensor] = field(default_factory=dict)
    merged_mask: Tensor | None = None
    taps: dict[str, Tensor] = field(default_factory=dict)

    @property
    def estimated_masks(self) -> dict[int, Tensor]:
        """The masks a mask estimator produced (what the active-area loss of Eq. 6 should see):
        all of ``masks`` except, with ``single_mask``, the upsampled copies of the top mask."""
        return {idx: self.masks[idx] for idx in self.mask_logits}


def merge_masks(masks: Sequence[Tensor]) -> Tensor:
    """Sum of binary masks [N,1,h,w] after nearest upsampling to the largest (DynConv's
    visualisation, used for AIM's "merged masks"); detached: it is for display, not for losses."""
    if not masks:
        raise ValueError("merge_masks needs at least one mask")
    size = max((m.shape[-2:] for m in masks), key=lambda s: s[0] * s[1])
    return sum(F.interpolate(m.detach(), size=tuple(size), mode="nearest") for m in masks)


class _AimBase(TappedModel):
    kind = "aim"
    input_encoding = "imagenet"
    classifier_tap = CLASSIFIER_TAP

    def __init__(self, gumbel_schedule: str, noise_off_fraction: float) -> None:
        super().__init__()
        if gumbel_schedule not in GUMBEL_SCHEDULES:
            raise ValueError(f"unknown gumbel_schedule {gumbel_schedule!r}; choose one of {GUMBEL_SCHEDULES}")
        if not 0.0 <= noise_off_fraction <= 1.0:
            raise ValueError(f"noise_off_fraction must be in [0, 1], got {noise_off_fraction}")
        self.gumbel_schedule = gumbel_schedule
        self.noise_off_fraction = noise_off_fraction
        self.gumbel = BinaryGumbel()
        #: identity at the ``aim`` tap, so hook-based tools (captum's LayerGradCam) can read it
        self.aim_tap = nn.Identity()

    @property
    def taps(self) -> tuple[str, ...]:
        return ("input", *self.stages.keys(), CLASSIFIER_TAP)

    def set_epoch(self, epoch: int, total: int) -> tuple[float, bool]:
        """Set the Gumbel temperature and noise for 0-based `epoch` of `total` (`gumbel_schedule`);
        returns them."""
        temperature, noise = gumbel_schedule(epoch, total, self.gumbel_schedule, self.noise_off_fraction)
        self.set_gumbel(temperature, noise)
        return temperature, noise

    def set_gumbel(self, temperature: float, noise: bool) -> None:
        """Explicit setter for the Gumbel temperature and noise switch."""
        if temperature <= 0:
            raise ValueError(f"Gumbel temperature must be > 0, got {temperature}")
        self.gumbel.temperature, self.gumbel.noise = float(temperature), bool(noise)

    def _check_taps(self, taps: Sequence[str]) -> None:
        unknown = set(taps) - set(self.taps)
        if unknown:
            raise ValueError(f"unknown tap(s) {sorted(unknown)}; this model has {list(self.taps)}")

    def forward_aim(self, x: Tensor, taps: Sequence[str] = ()) -> AimOutput:  # pragma: no cover
        raise NotImplementedError

    def forward_taps(self, x: Tensor, taps: Sequence[str] = ()) -> tuple[Tensor, dict[str, Tensor]]:
        """Final logits and the activations at `taps` (taps.py contract; ``aim`` included)."""
        out = self.forward_aim(x, taps)
        return out.logits, out.taps

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_aim(x).logits


class AimModel(_AimBase):
    """Backbone + AIM top-down pathway (Sec. 3). Build with `build_aim`."""

    def __init__(self, backbone: NumberedBackbone, num_classes: int, stage: int, width: int = TOP_DOWN_WIDTH,
                 mask_width: int = MASK_WIDTH, aux_losses: bool = True, single_mask: bool = False,
                 edge_init: bool = False, dropout: float = 0.0, gumbel_schedule: str = "fixed",
                 noise_off_fraction: float = 0.8) -> None:
        super().__init__(gumbel_schedule, noise_off_fraction)
        self.stages = backbone.stages
        self.family = backbone.family
        # the numbered stage each tap outputs (ResNet's mid1 outputs layer1 = stage 1)
        self.tap_stage = {tap: idx[-1] for tap, idx in backbone.indices.items()}
        readable = sorted(self.tap_stage.values())
        if stage not in readable:
            raise ValueError(f"stage T={stage} is not a readable stage of {self.family}; choose one of "
                             f"{readable} (ConvNeXt S0-S3; ResNet layer1-4 = 1-4)")
        self.stage = stage
        self.aux_losses = aux_losses
        self.single_mask = single_mask
        self.edge_init = edge_init
        #: taps the top-down pathway reads, top stage first
        self.top_down_taps = tuple(t for t in reversed(list(self.stages)) if self.tap_stage[t] >= stage)
        channels = {t: backbone.out_channels[self.tap_stage[t]] for t in self.top_down_taps}
        self.branches = nn.ModuleDict({t: TopDownBranch(channels[t], width) for t in self.top_down_taps})
        masked = self.top_down_taps[:1] if single_mask else self.top_down_taps
        self.mask_estimators = nn.ModuleDict({t: MaskEstimator(channels[t], mask_width) for t in masked})
        if edge_init:
            apply_edge_init(self.mask_estimators)
        self.stage_heads = nn.ModuleDict(
            {t: StageClassifier(width, num_classes, dropout) for t in self.top_down_taps} if aux_losses else {})
        self.head = StageClassifier(width, num_classes, dropout)

    def forward_aim(self, x: Tensor, taps: Sequence[str] = ()) -> AimOutput:
        """One forward pass: final logits, auxiliary logits, masks and the asked taps."""
        self._check_taps(taps)
        acts: dict[str, Tensor] = {"input": x} if "input" in taps else {}
        feats: dict[str, Tensor] = {}
        h = x
        for name, stage in self.stages.items():
            h = stage(h)
            feats[name] = h
            if name in taps:
                acts[name] = h
        out = AimOutput(logits=x.new_empty(0))
        merged: Tensor | None = None
        top_mask: Tensor | None = None
        for name in self.top_down_taps:
            f, idx = feats[name], self.tap_stage[name]
            t = self.branches[name](f)
            if name in self.mask_estimators:
                a = self.mask_estimators[name](f)
                b = self.gumbel(a)
                out.mask_logits[idx] = a
                top_mask = b if top_mask is None else top_mask
            else:  # single_mask: the top stage's mask, upsampled (App. D.3)
                b = F.interpolate(top_mask, size=t.shape[-2:], mode="nearest")
            out.masks[idx] = b
            o = t * b  # Eq. 3
            if self.aux_losses:
                out.stage_logits[idx] = self.stage_heads[name](o)  # Eq. 4, before merging
            merged = o if merged is None else o + F.interpolate(merged, size=o.shape[-2:], mode="nearest")
        merged = self.aim_tap(merged)
        if CLASSIFIER_TAP in taps:
            acts[CLASSIFIER_TAP] = merged
        out.logits = self.head(merged)  # Eq. 5
        out.merged_mask = merge_masks(list(out.masks.values()))
        out.taps = acts
        return out


class _MaskedStage(nn.Module):
    """One tap's numbered stages, each stage in `estimators` followed by ``* G(M(stage input))``
    (no skip connection, Fig. 28). The masks and mask logits of the latest call are left in
    ``last_masks`` / ``last_logits`` for `BottomUpAimModel.forward_aim` to collect."""

    def __init__(self, blocks: nn.Sequential, indices: tuple[int, ...], estimators: dict[int, MaskEstimator],
                 gumbel: BinaryGumbel) -> None:
        super().__init__()
        self.blocks = blocks
        self.indices = indices
        self.estimators = nn.ModuleDict({str(i): e for i, e in estimators.items()})
        self.gumbel = gumbel  # shared with the model (no parameters)
        self.last_masks: dict[int, Tensor] = {}
        self.last_logits: dict[int, Tensor] = {}

    def forward(self, h: Tensor) -> Tensor:
        self.last_masks, self.last_logits = {}, {}
        for idx, block in zip(self.indices, self.blocks):
            y = block(h)
            if str(idx) in self.estimators:
                a = self.estimators[str(idx)](h)
                b = self.gumbel(a)
                if b.shape[-2:] != y.shape[-2:]:
                    raise RuntimeError(f"mask {tuple(b.shape[-2:])} and stage {idx} output {tuple(y.shape[-2:])} "
                                       f"differ; use an input size divisible by the backbone's total stride")
                self.last_logits[idx], self.last_masks[idx] = a, b
                y = y * b
            h = y
        return h


class BottomUpAimModel(_AimBase):
    """Bottom-up masking without skip connections (Sec. 6.1, App. D.4, Fig. 28; Tables 2, 14, 15).

    Each stage in `masked_blocks` is followed by ``* G(M(stage input))``; the backbone's own
    classifier reads the last stage. Build with ``build_aim(..., direction="bottom_up")``.
    """

    def __init__(self, backbone: NumberedBackbone, masked_blocks: Sequence[int], mask_width: int = MASK_WIDTH,
                 edge_init: bool = False, gumbel_schedule: str = "fixed",
                 noise_off_fraction: float = 0.8) -> None:
        super().__init__(gumbel_schedule, noise_off_fraction)
        self.family = backbone.family
        self.tap_stage = {tap: idx[-1] for tap, idx in backbone.indices.items()}
        allowed = sorted(backbone.strides)
        blocks = tuple(sorted(set(int(b) for b in masked_blocks)))
        if not blocks or not set(blocks) <= set(allowed):
            raise ValueError(f"masked_blocks={tuple(masked_blocks)} must be a non-empty subset of {allowed} "
                             f"(stage numbers; the stem is not masked)")
        self.masked_blocks = blocks
        self.edge_init = edge_init
        self.stages = nn.ModuleDict({
            tap: _MaskedStage(backbone.stages[tap], idx, {
                i: MaskEstimator(backbone.in_channels[i], mask_width, stride=backbone.strides[i])
                for i in idx if i in blocks}, self.gumbel)
            for tap, idx in backbone.indices.items()})
        if edge_init:
            for stage in self.stages.values():
                apply_edge_init(stage.estimators)
        self.head = backbone.head

    @property
    def mask_estimators(self) -> dict[str, MaskEstimator]:
        """Stage number (as str) -> its mask estimator."""
        return {k: e for stage in self.stages.values() for k, e in stage.estimators.items()}

    def forward_aim(self, x: Tensor, taps: Sequence[str] = ()) -> AimOutput:
        """One forward pass: logits, the masks of the masked stages and the asked taps."""
        self._check_taps(taps)
        acts: dict[str, Tensor] = {"input": x} if "input" in taps else {}
        out = AimOutput(logits=x.new_empty(0))
        masks: dict[int, Tensor] = {}
        mask_logits: dict[int, Tensor] = {}
        h = x
        for name, stage in self.stages.items():
            h = stage(h)
            masks.update(stage.last_masks)
            mask_logits.update(stage.last_logits)
            stage.last_masks, stage.last_logits = {}, {}  # do not keep the graph alive
            if name in taps:
                acts[name] = h
        h = self.aim_tap(h)
        if CLASSIFIER_TAP in taps:
            acts[CLASSIFIER_TAP] = h
        out.masks = dict(sorted(masks.items(), reverse=True))  # top stage first
        out.mask_logits = dict(sorted(mask_logits.items(), reverse=True))
        out.logits = self.head(h)
        out.merged_mask = merge_masks(list(out.masks.values()))
        out.taps = acts
        return out


def build_aim(arch: str, num_classes: int, *, backbone_weights: str | Path | None = None,
              direction: str = "top_down", stage: int | None = None, masked_blocks: Sequence[int] | None = None,
              width: int | None = None, mask_width: int | None = None, aux_losses: bool | None = None,
              single_mask: bool = False, edge_init: bool = False, dropout: float = 0.0,
              drop_path: float | None = None, gumbel_schedule: str = "fixed",
              noise_off_fraction: float = 0.8) -> AimModel | BottomUpAimModel:
    """Backbone + AIM (the ``"aim"`` kind of `build_model`).

    Parameters
    ----------
    arch : a `BACKBONES` entry with a stage cut (`AIM_ARCHS`): the paper's convnext_tiny, resnet50,
        resnet101; tiny (ResNet-shaped, the vanilla kind's) and tiny_convnext for tests and the demo.
    num_classes : classes of every classifier.
    backbone_weights : local torchvision state-dict file (ImageNet) for the BACKBONE, absolute or
        relative to $WEIGHTS_ROOT; None = random init. (``build_model("aim", ..., weights=FILE)``
        loads a complete AIM checkpoint of this model instead, through `models.weights`.)
    direction : "top_down" (the paper's AIM, Sec. 3) or "bottom_up" (Sec. 6.1 / App. D.4).
    stage : top-down only: the stage T where the pathway stops (Sec. 4 "AIM[T]"; ConvNeXt S0-S3,
        ResNet stem = 0, layer i = i). Default 2.
    masked_blocks : bottom-up only: stage numbers whose output is masked (Table 14: (1,2,3), (2,3), (3,)).
    width, mask_width : channels of the top-down pathway and of the mask estimators; default
        `TOP_DOWN_WIDTH` / `MASK_WIDTH` (256 / 32, which match Table 6), `SMALL_WIDTHS` for tiny archs.
    aux_losses : top-down only: per-stage classifiers (default True; False = Table 12's "no").
    single_mask : top-down only: one mask estimator at the top stage (Table 13).
    edge_init : edge-emphasised mask-estimator initialisation (App. D.5, Table 16).
    dropout : before every AIM classifier (Table 4 trains with 0.3).
    drop_path : ConvNeXt stochastic depth (Table 4: 0.3; None = torchvision's default).
    gumbel_schedule, noise_off_fraction : see `gumbel_schedule`; applied by ``model.set_epoch``.
    """
    if direction not in ("top_down", "bottom_up"):
        raise ValueError(f"direction must be 'top_down' or 'bottom_up', got {direction!r}")
    backbone = build_backbone(arch, num_classes, backbone_weights, drop_path)
    default_width, default_mask_width = SMALL_WIDTHS.get(arch, (TOP_DOWN_WIDTH, MASK_WIDTH))
    mask_width = default_mask_width if mask_width is None else mask_width
    if direction == "bottom_up":
        conflicts = {k: v for k, v in dict(stage=stage, width=width, aux_losses=aux_losses or None,
                                           single_mask=single_mask or None).items() if v is not None}
        if conflicts:
            raise ValueError(f"{sorted(conflicts)} describe the top-down pathway; drop them for "
                             f"direction='bottom_up' (it uses masked_blocks)")
        if masked_blocks is None:
            raise ValueError("direction='bottom_up' needs masked_blocks, e.g. (1, 2, 3) or (3,) (Table 14)")
        return BottomUpAimModel(backbone, masked_blocks, mask_width, edge_init, gumbel_schedule,
                                noise_off_fraction)
    if masked_blocks is not None:
        raise ValueError("masked_blocks is for direction='bottom_up'; the top-down pathway takes stage=T")
    width = default_width if width is None else width
    return AimModel(backbone, num_classes, 2 if stage is None else stage, width, mask_width,
                    True if aux_losses is None else aux_losses, single_mask, edge_init, dropout,
                    gumbel_schedule, noise_off_fraction)


def complexity(model: nn.Module, size: int = 224) -> dict[str, float]:
    """Parameters (millions) and GMACs of one ``size`` x ``size`` RGB image (App. A.2, Table 6).

    MACs = FLOPs / 2 from torch's FlopCounterMode (convolutions and matrix products; the paper's
    "GFLOPs" are multiply-accumulates, e.g. 4.1 for ResNet-50). Counted in evaluation mode.
    """
    params = count_parameters(model)
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, 3, size, size, device=next(model.parameters()).device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return {"params_m": params / 1e6, "gmacs": counter.get_total_flops() / 2 / 1e9}


#: Table 6's rows: (label, arch, AIM stage T or None for the plain backbone)
TABLE6_MODELS: tuple[tuple[str, str, int | None], ...] = (
    ("ConvNeXt-tiny", "convnext_tiny", None),
    ("ConvNeXt-tiny+AIM [1]", "convnext_tiny", 1),
    ("ConvNeXt-tiny+AIM [2]", "convnext_tiny", 2),
    ("ResNet50", "resnet50", None),
    ("ResNet50+AIM [2]", "resnet50", 2),
    ("ResNet50+AIM [3]", "resnet50", 3),
)


def measure_table6(num_classes: int = 200, size: int = 224, count_macs: bool = True,
                   **options: Any) -> list[dict[str, Any]]:
    """Our counts for Table 6's models (same labels as the paper's rows in
    ``rightfocus.experiments.paper_numbers_aim.TABLE6``). ``count_macs=False`` skips the forward
    passes (parameters only). Options go to `build_aim`."""
    rows = []
    for label, arch, stage in TABLE6_MODELS:
        # parameters only: build on the meta device (shapes without memory or initialisation)
        with torch.device("cpu" if count_macs else "meta"):
            model = (build_torchvision(arch, num_classes) if stage is None
                     else build_aim(arch, num_classes, stage=stage, **options))
        if count_macs:
            row = complexity(model, size)
        else:
            row = {"params_m": count_parameters(model) / 1e6, "gmacs": None}
        rows.append({"model": label, "arch": arch, "stage": stage, **row})
    return rows


register_kind("aim", build_aim)
