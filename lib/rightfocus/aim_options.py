"""AIM's per-run settings (Alshami et al. 2025, Sec. 3-4, App. A, Tables 4/5): `AimOptions`, typed and
validated, read from ``RunConfig.extra`` (where grids and config files keep them, so a run's config
file and run id are those of its ``extra`` dict). `AIM_EXTRA_DEFAULTS` is the defaults in the form
``extra`` holds them (lists, not tuples), which `experiments.aim_grids.make_config` starts from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

#: how AIM runs evaluate (validation and test): the centre crop at the run's resolution after resizing
#: the shorter side to resolution / EVAL_CENTER_CROP (224 -> 256, TravelingBirds 299 -> 342); AIM
#: evaluates "center-cropped images" (Sec. 6.2, App. A.6, B.1) and states no resize ratio, so this is
#: torchvision's ImageNet evaluation recipe (`rightfocus.data.transforms.center_crop_geometry`)
EVAL_CENTER_CROP = 0.875

#: value kinds of the fields: what a YAML / grid value of each may be
_INT, _FLOAT, _BOOL, _STR = "int", "float", "bool", "str"
_INT_LIST, _INT_PAIR = "list of int", "pair of int"


def _opt(default: Any, kind: str, optional: bool = False, setting: bool = True) -> Any:
    return field(default=default, metadata={"kind": kind, "optional": optional, "setting": setting})


@dataclass(frozen=True)
class AimOptions:
    """One AIM run's settings; the defaults are the paper's values (Tables 4/5, Sec. 3, A.3)."""

    stage: int = _opt(1, _INT)                      # T: last top-down stage (Sec. 4, "AIM [index]")
    tau: float | None = _opt(0.25, _FLOAT, True)    # final active-area threshold; None = no mask loss
    anneal_start: int = _opt(0, _INT)               # epoch at which tau starts to fall from 1.0 (Fig. 9 shows 10)
    anneal_epochs: int = _opt(100, _INT)            # epochs over which it falls (half of 200)
    aux_losses: bool = _opt(True, _BOOL)            # per-stage classification losses (Eq. 7)
    single_mask: bool = _opt(False, _BOOL)          # Table 13: only the first top-down stage's mask, upsampled
    direction: str = _opt("top_down", _STR)         # or "bottom_up" (Sec. 6.1, D.4)
    blocks: tuple[int, ...] | None = _opt(None, _INT_LIST, True)  # bottom-up: masked backbone blocks, e.g. [1, 2, 3]
    edge_init: bool = _opt(False, _BOOL)            # Table 16 / Fig. 30
    topdown_lr: float = _opt(0.01, _FLOAT)          # Table 4
    noise_off_fraction: float = _opt(0.8, _FLOAT)   # Gumbel noise off for the last 20 % of the epochs (DynConv's schedule)
    weight_decay: float = _opt(1e-3, _FLOAT)        # Table 4
    label_smoothing: float = _opt(0.05, _FLOAT)     # Table 4
    randaugment: tuple[int, int] | None = _opt((3, 9), _INT_PAIR, True)  # Table 4: (ops, magnitude); None = off
    dropout: float = _opt(0.3, _FLOAT)              # Table 4
    drop_path: float | None = _opt(0.3, _FLOAT, True)  # Table 4: ConvNeXt's stochastic depth (None: torchvision's default)
    val_fraction: float = _opt(0.2, _FLOAT)         # Table 4: validation = 20 % of the training split (seeded)
    shifted_offset: float | None = _opt(None, _FLOAT, True)  # A.6: centre offset as a fraction of the image side (CUB runs only)
    gradcam_at: str = _opt("classifier_input", _STR)  # or "backbone": where GradCAM for EPG is taken (the paper does not say)
    guided_eval: bool = _opt(False, _BOOL)          # also Guided GradCAM / Guided Backprop EPG on test (Table 8)
    fixed_images: int = _opt(4, _INT)               # test images whose masks are stored every epoch (Fig. 7)
    pretrained: bool = _opt(True, _BOOL)            # ImageNet-1k weights for the backbone (paper); demo: False
    #: which of the paper's backbones the run stands for (set by the grids; not a training setting)
    paper_arch: str | None = _opt(None, _STR, True, setting=False)
    #: a backbone weights file instead of the ImageNet release of `arch` (not a default of the grids)
    weights: str | None = _opt(None, _STR, True, setting=False)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any] | None) -> "AimOptions":
        """The options of an ``extra`` dict: its keys over the defaults. An unknown key or a value of
        the wrong type is a ValueError naming the key (and the valid keys)."""
        extra = dict(extra or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(extra) - set(fields))
        if unknown:
            raise ValueError(f"unknown AIM extra key(s) {unknown}; valid: {sorted(AIM_EXTRA_DEFAULTS)} "
                             f"(and {', '.join(k for k, f in fields.items() if not f.metadata['setting'])})")
        return cls(**{k: _checked(k, v, fields[k].metadata) for k, v in extra.items()})

    @classmethod
    def from_config(cls, config: Any) -> "AimOptions":
        """The options of a run config (``config.extra``)."""
        return cls.from_extra(config.extra)

    def as_extra(self) -> dict[str, Any]:
        """The settings in ``extra``'s form (sequences as lists), without the fields that are not
        training settings when they are unset (``paper_arch``, ``weights``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not f.metadata["setting"] and value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _checked(key: str, value: Any, meta: Mapping[str, Any]) -> Any:
    """`value` of field `key`, type-checked (ints are accepted where floats are; sequences become
    tuples)."""
    kind = meta["kind"]
    if value is None:
        if meta["optional"]:
            return None
        raise ValueError(f"AIM extra {key!r} must be a {kind}, got None")
    ok = {
        _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
        _FLOAT: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        _BOOL: lambda v: isinstance(v, bool),
        _STR: lambda v: isinstance(v, str),
        _INT_LIST: lambda v: isinstance(v, (list, tuple)) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in v),
        _INT_PAIR: lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(
            isinstance(x, int) and not isinstance(x, bool) for x in v),
    }[kind]
    if not ok(value):
        raise ValueError(f"AIM extra {key!r} must be a {kind}{' or None' if meta['optional'] else ''}, "
                         f"got {value!r} ({type(value).__name__})")
    if kind == _FLOAT:
        return float(value)
    return tuple(value) if kind in (_INT_LIST, _INT_PAIR) else value


#: the defaults in ``extra``'s form (the grids' starting point)
AIM_EXTRA_DEFAULTS: dict[str, Any] = AimOptions().as_extra()
