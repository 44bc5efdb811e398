"""Run configurations as data: one `RunConfig` = one training run (Rao et al. 2023, Sec. 4 and D.1).

A run's id is a readable prefix plus an 8-hex hash of the fields that can change its results; paths,
devices and the profile (which only chooses the folder) never enter the hash, so moving data or
switching GPUs keeps the id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import yaml

from rightfocus.registry import NameView, Registry

PAPERS = ("mg", "aim")
from rightfocus.models.kinds import MODEL_KINDS, native_methods  # noqa: E402  (a registry: iterates the kind names in order)
TAPS = ("input", "mid1", "mid2", "mid3", "final")


def _methods() -> Registry:
    from rightfocus.attributions.methods import ATTRIBUTION_METHODS  # imports torch: on first use only

    return ATTRIBUTION_METHODS


def _losses() -> Registry:
    from rightfocus.losses import LOCALISATION_LOSSES  # imports torch: on first use only

    return LOCALISATION_LOSSES


#: attribution methods a run can be guided with (`rightfocus.attributions.methods`: single pass,
#: differentiable): ixg, intgrad, gradcam, bcos and any registered one
METHODS = NameView(_methods, lambda m: m.single_pass and m.differentiable)
#: localisation losses (`rightfocus.losses`): energy, l1, ppce, rrr, distill and any registered one
LOSSES = NameView(_losses)
TASKS = ("bird", "place")

#: fields that locate a run or choose hardware; they never change its results, so never its id
#: (``channels_last`` / ``cudnn_benchmark`` / ``num_workers`` are performance knobs: the same math up to
#: round-off; with random augmentations, workers draw other (equally distributed) random numbers)
NON_RESULT_FIELDS = frozenset({"data_root", "profile", "device", "num_workers", "weights_root", "threads",
                               "channels_last", "cudnn_benchmark"})

#: numeric precision of a run (`training.runtime`): "auto" = bf16 autocast on CUDA with bf16, fp32
#: elsewhere. It changes results, so an explicit "fp32" / "bf16" enters the id ("auto" stays out of
#: it)
PRECISIONS = ("auto", "fp32", "bf16")

#: the guidance signal of a guided run (`training.mask_sources`); the default stays out of the run id
DEFAULT_MASK_SOURCE = "boxes"

#: rehearsal caps: they change results, so they enter the id, but only when set (None stays out of
#: it)
CAP_FIELDS = ("max_steps_per_epoch", "max_eval_images")

class _NativeMethods(Mapping[str, str]):
    """Model kind -> its native attribution method, read from the model-kind registry at every use
    (`ModelKind.native_method`: vanilla -> ixg, xdnn -> intgrad, bcos -> bcos)."""

    def _table(self) -> dict[str, str]:
        return native_methods()

    def __getitem__(self, kind: str) -> str:
        return self._table()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return repr(self._table())


#: the attribution method that is native to each model kind (Rao et al. 2023, Sec. 3.2)
NATIVE_METHOD: Mapping[str, str] = _NativeMethods()

#: ``init_from`` of a guided run that starts where a baseline starts, not from a trained baseline: from
#: the pretrained weights named by ``extra.weights`` (Waterbirds: ImageNet, Rao et al. 2023 D.1.2), or,
#: with none named, from the same seeded fresh initialisation as the baseline of its seed
FROM_INIT = "init"


class _Help(dict):
    """Field -> help text; a callable value (a text that lists registered names) is called on lookup."""

    def __getitem__(self, key: str) -> str:
        value = super().__getitem__(key)
        return value() if callable(value) else value


#: what each RunConfig field means (`rightfocus train --help` lists these with the defaults;
#: tests/test_first_hour.py checks that every field has one)
FIELD_HELP: dict[str, str] = _Help({
    "paper": f"which paper's training loop: {' | '.join(PAPERS)}",
    "dataset": "dataset name (voc2007, coco2014, waterbirds, ...; AIM also waterbirds95, cub, ...)",
    "data_root": "dataset folder; a relative one is taken from the project root (`make data` writes data/synthetic/<dataset>)",
    "model_kind": f"classifier family: {' | '.join(MODEL_KINDS)}",
    "arch": "architecture of that family (tiny, resnet50, densenet121, vitc_s, ...)",
    "method": lambda: f"attribution guided (None: a baseline): {' | '.join(METHODS)}",
    "tap": f"layer the attribution is taken at: {' | '.join(TAPS)}",
    "loss": lambda: f"localisation loss: {' | '.join(LOSSES)}",
    "lam": "weight of the localisation loss (lambda, Eq. 1)",
    "annotation_fraction": "fraction of training images whose boxes are used, in (0, 1]",
    "dilation": "box dilation (fraction of the box size, >= 0)",
    "task": f"Waterbirds task (None elsewhere): {' | '.join(TASKS)}",
    "seed": "random seed",
    "epochs": "training epochs",
    "lr": "learning rate",
    "batch_size": "global batch size",
    "image_size": "training and evaluation resolution (pixels)",
    "mask_source": "guidance signal: boxes | dilated-boxes:<p> | segmentation | teacher:<run id or run folder> | "
                   "aim:<run id or run folder> (soft masks in [0, 1]; rightfocus.training.mask_sources)",
    "init_from": "GUIDED MG RUNS NEED IT: the run id of the baseline they start from (train the baseline "
                 "first; `.venv/bin/rightfocus train` prints its run_id); a list: the best of them on validation; "
                 f"{FROM_INIT!r}: start where a baseline starts (extra.weights, else the seeded fresh "
                 "initialisation), as Waterbirds guided runs do (D.1.2)",
    "extra": "paper-specific settings, e.g. weights: <file> (pretrained weights, under weights_root); MG: "
             "iou_thresholds: [...] (the IoU thresholds validation selects from; default 0.05 .. 0.95)",
    "profile": "results folder the run goes to: <results>/<profile>/runs/<run id>",
    "device": "auto | cpu | cuda | cuda:<k>",
    "num_workers": "DataLoader workers (None: 0 on CPU, up to 8 per process on CUDA)",
    "weights_root": "folder of pretrained weights files (None: $WEIGHTS_ROOT); nothing is downloaded",
    "threads": "torch CPU threads (None: torch's default)",
    "max_steps_per_epoch": "cap: training batches per epoch (None: all; changes the run id)",
    "max_eval_images": "cap: images per val/test evaluation (None: all; changes the run id)",
    "precision": f"numeric precision: {' | '.join(PRECISIONS)}",
    "channels_last": "channels_last memory format (None: on for conv nets on CUDA)",
    "cudnn_benchmark": "cudnn.benchmark on CUDA (None: on)",
})


@dataclass
class RunConfig:
    """One training run. `method`/`tap`/`loss` are None for a baseline (classification only).

    `init_from`: the baseline run id a guided run starts from; a list of ids means "the best of
    these on validation" (the paper's baseline learning-rate sweep, Sec. D.1.1); `FROM_INIT` means
    the initialisation a baseline starts from (``extra.weights`` or the seeded fresh one, D.1.2).
    `extra`: paper-specific settings (e.g. ``weights`` for pretrained weights, ``val_groups``).
    """

    paper: str = "mg"
    dataset: str = "voc2007"
    data_root: str = "data/synthetic/voc2007"
    model_kind: str = "bcos"
    arch: str = "tiny"
    method: str | None = None
    tap: str | None = None
    loss: str | None = None
    lam: float = 0.0
    annotation_fraction: float = 1.0
    dilation: float = 0.0
    task: str | None = None
    seed: int = 0
    epochs: int = 1
    lr: float = 1e-4
    batch_size: int = 64
    image_size: int = 224
    #: what the localisation loss compares the attributions with (`training.mask_sources`)
    mask_source: str = DEFAULT_MASK_SOURCE
    init_from: str | list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    profile: str = "demo"
    device: str = "auto"
    #: DataLoader worker processes (None: auto, 0 on CPU, up to 8 per process on CUDA)
    num_workers: int | None = None
    weights_root: str | None = None
    #: torch CPU threads for this run (None: torch's default); 1 lets `make -j` jobs share cores
    threads: int | None = None
    #: rehearsal caps (None: none): training batches per epoch, images of each val/test evaluation
    max_steps_per_epoch: int | None = None
    max_eval_images: int | None = None
    #: "auto" | "fp32" | "bf16" (see PRECISIONS; bf16 = autocast of forward, attribution and loss)
    precision: str = "auto"
    #: channels_last memory format (None: auto, on for conv nets on CUDA)
    channels_last: bool | None = None
    #: torch.backends.cudnn.benchmark on CUDA (None: on)
    cudnn_benchmark: bool | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def init_run_ids(self) -> list[str]:
        """The run ids of the baselines this run starts from ([] for a baseline or a `FROM_INIT` run)."""
        if self.init_from is None or self.init_from == FROM_INIT:
            return []
        return [self.init_from] if isinstance(self.init_from, str) else list(self.init_from)

    @property
    def is_baseline(self) -> bool:
        """MG: no localisation loss. AIM: the plain backbone (an AIM run has no `loss` either)."""
        return self.model_kind != "aim" if self.paper == "aim" else self.loss is None

    def validate(self) -> None:
        """Raise ValueError naming the bad field and the allowed values."""

        def check(name: str, value: Any, allowed: Iterable[Any]) -> None:
            allowed = tuple(allowed)
            if value not in allowed:
                raise ValueError(f"RunConfig.{name}={value!r} is not valid; use one of {list(allowed)}")

        check("paper", self.paper, PAPERS)
        check("model_kind", self.model_kind, MODEL_KINDS)
        check("method", self.method, (None, *METHODS))
        check("tap", self.tap, (None, *TAPS))
        check("loss", self.loss, (None, *LOSSES))
        check("task", self.task, (None, *TASKS))
        check("precision", self.precision, PRECISIONS)
        guided = (self.method, self.tap, self.loss)
        if any(v is None for v in guided) and any(v is not None for v in guided):
            raise ValueError(
                f"RunConfig: method, tap and loss must all be set (guided run) or all be None "
                f"(baseline); got method={self.method!r}, tap={self.tap!r}, loss={self.loss!r}"
            )
        if isinstance(self.init_from, list) and FROM_INIT in self.init_from:
            raise ValueError(f"RunConfig.init_from: {FROM_INIT!r} (start from the initialisation) cannot be one "
                             f"of a list of baseline run ids; give it alone")
        from rightfocus.runs.mask_spec import check_mask_source

        check_mask_source(self)
        if self.paper == "aim":  # AIM's settings are typed: an unknown key or a wrong type is refused on load
            from rightfocus.aim_options import AimOptions

            AimOptions.from_extra(self.extra)
        if not 0.0 < self.annotation_fraction <= 1.0:
            raise ValueError(f"RunConfig.annotation_fraction={self.annotation_fraction} must be in (0, 1]")
        if self.dilation < 0:
            raise ValueError(f"RunConfig.dilation={self.dilation} must be >= 0")
        for name in ("epochs", "batch_size", "image_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"RunConfig.{name} must be >= 1")
        for name in CAP_FIELDS:
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise ValueError(f"RunConfig.{name}={getattr(self, name)} must be >= 1 (or None: no cap)")

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        """Build from a mapping; an unknown key is an error that names it and lists the valid ones."""
        import difflib

        valid = cls.field_names()
        unknown = sorted(set(data) - set(valid))
        if unknown:
            hints = [f"{k!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, valid, 1))
                     else repr(k) for k in unknown]
            raise ValueError(f"unknown config key(s) {', '.join(hints)}; valid keys: {valid}")
        values = dict(data)
        for names, kind in ((("lam", "lr", "annotation_fraction", "dilation"), float),
                            (("seed", "epochs", "batch_size", "image_size", "num_workers", "threads", *CAP_FIELDS),
                             int)):
            for name in names:
                if name in values and values[name] is not None:
                    values[name] = _number(name, values[name], kind)  # YAML reads 1e-4 as a string
        if values.get("extra") is None:
            values["extra"] = {}
        if not isinstance(values["extra"], dict):
            raise ValueError(f"config key 'extra' must be a mapping (e.g. extra: {{weights: file.pth}}), "
                             f"got {values['extra']!r}")
        return cls(**values)

    # ---- identity ------------------------------------------------------------------------------
    def result_fields(self) -> dict[str, Any]:
        """The fields that can change this run's results (everything but paths/devices/profile and
        performance knobs; the rehearsal caps only when set, the precision only when not "auto" and the
        mask source only when not the default, so that a default never changes a run id)."""
        return {k: v for k, v in self.to_dict().items()
                if k not in NON_RESULT_FIELDS and not (k in CAP_FIELDS and v is None)
                and not (k == "precision" and v == "auto")
                and not (k == "mask_source" and v == DEFAULT_MASK_SOURCE)}

    @property
    def run_id(self) -> str:
        return run_id(self)


def _number(name: str, value: Any, kind: type) -> int | float:
    """`value` as `kind` (int or float), or a ValueError naming the config key."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = kind(value)
        if kind is int and isinstance(value, float) and number != value:
            raise TypeError
        return number
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"config key {name!r} must be {what}, got {value!r}") from None


def _fmt(x: float) -> str:
    return f"{x:g}"


def _blocks(value: Any) -> str:
    return "b" + "".join(str(b) for b in value)


#: extra settings that tell runs of one grid apart, shown in the readable prefix when set to anything
#: but their default: key -> (default, tag of a value). MG: the seed of the annotated subset
#: (Waterbirds, 2 subsets); AIM: the ablations of Tables 5, 13 and 16 (defaults as in
#: `aim_grids.AIM_EXTRA_DEFAULTS`).
ID_TAGS: dict[str, tuple[Any, Callable[[Any], str]]] = {
    "annotation_seed": (0, lambda v: f"as{v}"),
    "direction": ("top_down", lambda v: str(v).replace("_", "")),
    "blocks": (None, _blocks),
    "aux_losses": (True, lambda v: "aux" if v else "noaux"),
    "single_mask": (False, lambda v: "single" if v else "allmasks"),
    "edge_init": (False, lambda v: "edgeinit" if v else "noedgeinit"),
}


def _tags(extra: Mapping[str, Any] | None) -> list[str]:
    """The `ID_TAGS` of the extra settings that differ from their default, in registry order."""
    extra = extra or {}
    return [tag(extra[k]) for k, (default, tag) in ID_TAGS.items() if k in extra and extra[k] != default]


def unique_runs(configs: Iterable[RunConfig]) -> list[RunConfig]:
    """`configs` with each run id once (the first of each), in order."""
    seen: dict[str, RunConfig] = {}
    for c in configs:
        seen.setdefault(c.run_id, c)
    return list(seen.values())


def run_id(config: RunConfig) -> str:
    """Readable prefix + "-" + 8 hex digits of a hash of `config.result_fields()`.

    E.g. ``voc2007-bcos-tiny-bcos-input-energy-l0.05-f1-d0-s0-1a2b3c4d``; baselines
    ``voc2007-bcos-tiny-baseline-lr0.0001-s0-<hash>``. Extra settings in `ID_TAGS` that differ from
    their default come before the seed (``...-f0.01-d0-as1-s0-<hash>``, ``...-T1-tau0.25-bottomup-b123-
    lr7e-06-s0-<hash>``), so that the runs of a grid differ in their readable prefix.
    """
    c = config
    head = [c.dataset] + ([c.task] if c.task else []) + [c.model_kind, c.arch]
    if c.paper == "aim" and not c.is_baseline:
        e = c.extra or {}
        variant = [f"T{e['stage']}"] if e.get("stage") is not None else []
        variant += [f"tau{_fmt(e['tau'])}"] if e.get("tau") is not None else ["noanneal"]
        parts = head + variant + _tags(e) + [f"lr{_fmt(c.lr)}", f"s{c.seed}"]
    elif not c.is_baseline and c.mask_source != DEFAULT_MASK_SOURCE:
        # the source's short name (teacher / aim / segmentation / dilated-boxes), not the referenced run
        parts = head + [str(c.method), str(c.tap), str(c.loss), f"l{_fmt(c.lam)}",
                        f"f{_fmt(c.annotation_fraction)}", c.mask_source.split(":")[0], *_tags(c.extra), f"s{c.seed}"]
    elif c.is_baseline:
        parts = head + ["baseline", f"lr{_fmt(c.lr)}"] + _tags(c.extra) + [f"s{c.seed}"]
    else:
        parts = head + [
            str(c.method), str(c.tap), str(c.loss), f"l{_fmt(c.lam)}",
            f"f{_fmt(c.annotation_fraction)}", f"d{_fmt(c.dilation)}", *_tags(c.extra), f"s{c.seed}",
        ]
    blob = json.dumps(c.result_fields(), sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:8]
    return "-".join(parts + [digest])


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """``["lam=0.1", "extra.weights=imagenet"]`` -> mapping; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value (e.g. lam=0.01)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else None
        if key.startswith("extra."):
            out.setdefault("extra", {})[key[len("extra."):]] = value
        else:
            out[key.strip()] = value
    return out


def load_config_file(path: str | Path, overrides: Iterable[str] = ()) -> RunConfig:
    """Read a YAML run config and apply ``key=value`` overrides (unknown keys are errors)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of RunConfig fields")
    over = parse_overrides(overrides)
    extra = {**(data.get("extra") or {}), **over.pop("extra", {})}
    data.update(over)
    if extra:
        data["extra"] = extra
    try:
        return RunConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        given = "".join(f" --set {o}" for o in overrides)
        raise ValueError(f"config file {path}{' with' + given if given else ''}: {exc}") from None


def dump_config(config: RunConfig) -> str:
    """YAML text with every RunConfig field (the run's config.yaml)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
