"""Model-guidance experiment groups as data, per profile (Rao et al. 2023, Sec. 5 and supplement D).

`group_configs(group, profile, data_root)` lists the `RunConfig`s of a group: baselines first, then
the guided runs (VOC/COCO: fine-tuned from the best baseline; Waterbirds: from the baselines'
initialisation, `GUIDED_INIT`). Runs that several groups need have identical configs, hence
identical run ids, and are trained once (voc-main's input/final runs are voc-layers' too, voc-limited's
100 % runs and voc-dilation's 0 % runs are voc-main's, coco-dilation's 0 % runs coco-main's).

Profiles:
- ``paper``: the paper's grid: ResNet-50 Vanilla (IxG) / X-DNN (IntGrad) / B-cos, Input and Final
  (plus Mid1-3), four losses, three lambdas each from Table D1 (limited annotations: Table D2), VOC 50
  epochs, COCO 10 epochs, lr 1e-4, batch 64, 224 px, from baselines swept over lr {1e-3, 1e-4, 1e-5}
  (VOC 300 / COCO 60 epochs, best val F1); Waterbirds-100: 2 seeds x 2 annotation subsets (1 %), lr
  1e-5, lambda 5e-2, 350 epochs, baselines and guided runs both fine-tuned from ImageNet (D.1.2); COCO
  dilated boxes (supplement A.2): B-cos input, Energy / L1. Data under ``<data_root>/<dataset>``;
  ImageNet weights as local files named in `PAPER_WEIGHTS` (relative to WEIGHTS_ROOT).
- ``demo``: synthetic data (``<data_root>/synthetic/<dataset>``, written by `make data`), ``tiny``
  models at 32 px, short training; every deviation is listed in `DEMO_DEVIATIONS` with the figures
  it affects.
- ``rehearsal``: the ``paper`` grid (same runs, architectures, resolutions, batch size, lambdas, lr
  sweep, weights file names) with every run capped (`REHEARSAL_CAPS`: 1 baseline / 2 guided epochs, a
  few steps per epoch, a small evaluation subset), for `make rehearse` on stand-in data and weights.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable

from rightfocus.runs.config import CAP_FIELDS, FROM_INIT, RunConfig, unique_runs
from rightfocus.models.backbones import BACKBONES
from rightfocus.models.kinds import native_methods

# the paper's printed lambdas (Tables D1/D2, D.1.2) live with the other paper numbers
from rightfocus.experiments.paper_numbers_mg import TABLE_D1, TABLE_D2, WATERBIRDS_LAMBDA

GROUPS: tuple[str, ...] = (
    "voc-main", "coco-main", "voc-layers", "voc-dilation", "voc-limited", "voc-gradcam",
    "coco-gradcam", "voc-backbones", "waterbirds", "coco-dilation",
)
PROFILES: tuple[str, ...] = ("demo", "paper", "rehearsal")
#: the paper's losses in its tables' and figures' order (a subset of the registered `rightfocus.losses.LOSSES`)
LOSS_ORDER: tuple[str, ...] = ("energy", "l1", "ppce", "rrr")
#: (model kind, its native attribution method), the columns of Figs. 5/6
MODELS: tuple[tuple[str, str], ...] = tuple(native_methods().items())

#: ImageNet weights the paper profile starts from: the release files under their own names, read from
#: WEIGHTS_ROOT unchanged (nothing is downloaded). Which project publishes each file and where:
#: `rightfocus.models.release.RELEASES` and docs/weights.md. B-cos ResNet-50 is model
#: guidance's own file (the one the paper used); DenseNet-121 and ViT-S are B-cos-v2's releases. Read from
#: each backbone's `Backbone.pretrained` (models/backbones/), model guidance's kinds only.
PAPER_WEIGHTS: dict[tuple[str, str], str] = {
    (kind, arch): file for arch, b in BACKBONES.items() for kind, file in b.pretrained.items() if kind != "aim"}

#: what a dataset's guided runs start from: "baseline" = the best of their baselines on validation
#: (VOC/COCO: "by fine-tuning the baseline models", D.1.1); "init" = where the baselines start, i.e. the
#: ImageNet weights (Waterbirds: "starting from models pre-trained on ImageNet", D.1.2; the demo: the
#: baselines' seeded fresh initialisation)
GUIDED_INIT: dict[str, str] = {"voc2007": "baseline", "coco2014": "baseline", "waterbirds": "init"}

#: per-profile settings (data, not code forks)
SETTINGS: dict[str, dict[str, Any]] = {
    "paper": {
        "arch": "resnet50",
        "backbones": ("densenet121", "vit_s"),
        "image_size": 224,
        "batch_size": 64,
        "threads": None,
        "baseline_lrs": (1e-3, 1e-4, 1e-5),
        "baseline_epochs": {"voc2007": 300, "coco2014": 60, "waterbirds": 350},
        "guided_epochs": {"voc2007": 50, "coco2014": 10, "waterbirds": 350},
        "guided_lr": {"voc2007": 1e-4, "coco2014": 1e-4, "waterbirds": 1e-5},
        "guided_init": GUIDED_INIT,
        "lambdas": {k: tuple(v) for k, v in TABLE_D1.items()},
        "lambdas_limited": {k: tuple(v) for k, v in TABLE_D2.items()},
        "groups": {
            "voc-main": {"models": MODELS, "losses": LOSS_ORDER},
            "coco-main": {"models": MODELS, "losses": LOSS_ORDER},
            "voc-layers": {"models": MODELS, "losses": LOSS_ORDER},
            "voc-dilation": {"models": MODELS, "losses": ("energy", "l1")},
            "voc-limited": {"models": (("bcos", "bcos"),), "losses": ("energy", "l1")},
            "voc-gradcam": {"models": MODELS, "losses": LOSS_ORDER},
            "coco-gradcam": {"models": MODELS, "losses": LOSS_ORDER},
            "voc-backbones": {"models": (("bcos", "bcos"),), "losses": LOSS_ORDER},
            "waterbirds": {"models": MODELS, "losses": ("energy", "l1")},
            # supplement A.2 / Fig. A4: dilated-box examples for VOC and COCO, B-cos at the input
            "coco-dilation": {"models": (("bcos", "bcos"),), "losses": ("energy", "l1")},
        },
        "dilations": (0.1, 0.25, 0.5),
        "fractions": (0.01, 0.1),
        "waterbirds_fraction": 0.01,
        "waterbirds_lambda": WATERBIRDS_LAMBDA,
        "waterbirds_seeds": (0, 1),
        "waterbirds_subsets": (0, 1),
    },
    "demo": {
        "arch": "tiny",
        "backbones": ("tiny_densenet", "tiny_vit"),
        "image_size": 32,
        "batch_size": 16,
        "threads": 1,  # one torch thread per run; `make mg-demo` runs two groups at once on 2 cores
        "baseline_lrs": (1e-3,),
        # B-cos (fixed logit bias) and X-DNN (no batch norm) learn slowly from scratch: more epochs
        "baseline_epochs": {"voc2007": 15, "coco2014": 15, "waterbirds": 10},
        "baseline_epochs_scale": {"vanilla": 2 / 3},  # vanilla (batch norm) learns fastest
        # Waterbirds guided runs start from the baselines' fresh initialisation (GUIDED_INIT) and train
        # 5 epochs (the baselines 10): enough for every run to meet its operating point
        # (benchmarks/recorded/demo_timing_2026-12-01.md)
        "guided_epochs": {"voc2007": 2, "coco2014": 2, "waterbirds": 5},
        "guided_lr": {"voc2007": 1e-3, "coco2014": 1e-3, "waterbirds": 1e-3},
        "guided_init": GUIDED_INIT,
        # one lambda per loss (the paper pools three): Table D1's largest, scaled up because the demo
        # trains for few epochs on few images
        "lambdas": {"energy": (5e-2,), "l1": (1e-1,), "ppce": (1e-2,), "rrr": (1e-3,)},
        "lambdas_limited": None,  # demo: lambda / fraction (keeps Eq. (1)'s balance, D.1.1's reasoning)
        # sized to the 2-core CPU budget of `make demo` (see DEMO_DEVIATIONS)
        "groups": {
            "voc-main": {"models": MODELS, "losses": LOSS_ORDER},
            "coco-main": {"models": MODELS, "losses": ("energy", "l1")},
            "voc-layers": {"models": (("bcos", "bcos"),), "losses": ("energy", "l1")},
            "voc-dilation": {"models": MODELS, "losses": ("energy", "l1")},
            "voc-limited": {"models": (("bcos", "bcos"),), "losses": ("energy", "l1")},
            "voc-gradcam": {"models": MODELS, "losses": ("energy", "l1")},
            "coco-gradcam": {"models": MODELS, "losses": ("energy", "l1")},
            "voc-backbones": {"models": (("bcos", "bcos"),), "losses": ("energy", "l1")},
            "waterbirds": {"models": (("bcos", "bcos"),), "losses": ("energy", "l1")},
            # the largest dilation only (two runs; the 0 % runs and the baseline are coco-main's)
            "coco-dilation": {"models": (("bcos", "bcos"),), "losses": ("energy", "l1"), "dilations": (0.5,)},
        },
        "dilations": (0.1, 0.25, 0.5),
        "fractions": (0.1, 0.25),
        "waterbirds_fraction": 0.25,
        "waterbirds_lambda": 5e-1,
        "waterbirds_seeds": (0,),
        "waterbirds_subsets": (0,),
    },
}

#: what the rehearsal profile caps in every run of the paper grid (`RunConfig` fields; the engine
#: honours ``max_steps_per_epoch`` / ``max_eval_images`` in both papers' loops)
REHEARSAL_CAPS: dict[str, int] = {"baseline_epochs": 1, "guided_epochs": 2, "max_steps_per_epoch": 2,
                                  "max_eval_images": 16}


def _rehearsal_settings() -> dict[str, Any]:
    """The paper's settings with the epochs capped (everything else, shapes included, unchanged)."""
    paper = SETTINGS["paper"]
    return {**paper,
            "baseline_epochs": {d: REHEARSAL_CAPS["baseline_epochs"] for d in paper["baseline_epochs"]},
            "guided_epochs": {d: REHEARSAL_CAPS["guided_epochs"] for d in paper["guided_epochs"]}}


SETTINGS["rehearsal"] = _rehearsal_settings()


def capped(config: RunConfig) -> RunConfig:
    """`config` with the rehearsal's step and evaluation caps (`REHEARSAL_CAPS`)."""
    return replace(config, **{k: REHEARSAL_CAPS[k] for k in CAP_FIELDS})


def rehearsal_key(config: RunConfig) -> tuple:
    """What the CPU rehearsal samples one run of, per group: (model kind, architecture, tap, method,
    task); baselines are not sampled (the sampled runs pull in the ones they start from)."""
    return (config.model_kind, config.arch, config.tap, config.method, config.task)


def rehearsal_companions(group: str, kept: list[RunConfig], runs: list[RunConfig]) -> list[RunConfig]:
    """What the CPU rehearsal keeps in `group` beside its sampled runs `kept` (`makefile.sample_groups`):
    for a kept run that starts from the initialisation (`FROM_INIT`, Waterbirds), the first baseline of
    its family, which its tables compare it with (a run from a baseline pulls that one in itself)."""
    family = ("dataset", "task", "model_kind", "arch", "seed")
    out: list[RunConfig] = []
    for c in kept:
        if c.init_from == FROM_INIT:
            twin = next((r for r in runs if r.is_baseline
                         and all(getattr(r, k) == getattr(c, k) for k in family)), None)
            if twin is not None:
                out.append(twin)
    return out


#: every way the demo profile departs from the paper, with the inventory ids each affects
DEMO_DEVIATIONS: tuple[dict[str, Any], ...] = (
    {"what": "synthetic datasets (VOC/COCO/Waterbirds formats) instead of the real ones, their test splits "
             "60 images (VOC/COCO; the releases' test sets are as large as their training sets); tiny models "
             "(width 16) at 32 px trained from scratch instead of ImageNet-pretrained ResNet-50 at 224 px",
     "figures": ("*",)},
    {"what": "one lambda per loss (the paper pools three per configuration, Table D1)",
     "figures": ("mg.fig4", "mg.fig5a", "mg.fig5b", "mg.fig6", "mg.fig7", "mg.fig8", "mg.fig10", "mg.fig12",
                 "mg.figB1", "mg.figB2", "mg.figB3", "mg.figB4", "mg.figB5", "mg.figB7", "mg.figB8", "mg.figB9",
                 "mg.figX1", "mg.figX2", "mg.figX3", "mg.figX4", "mg.figX5", "mg.figX6", "mg.figX7",
                 "mg.figX8", "mg.figX9", "mg.figX10", "mg.figX11")},
    {"what": "demo lambdas: Table D1's scale x10-100 (few epochs on few images); limited annotations: "
             "lambda / fraction instead of Table D2",
     "figures": ("mg.tabD1", "mg.tabD2", "mg.fig12", "mg.figB7", "mg.figX9", "mg.figX10")},
    {"what": "short training: baselines 10-15 epochs (one lr, 1e-3) instead of 300/60/350 with an lr sweep; "
             "guided runs 2 epochs (Waterbirds 5; lr 1e-3) instead of 50/10/350",
     "figures": ("*",)},
    {"what": "intermediate layers (Mid1-3): B-cos only, Energy and L1 only (the paper: all models, four losses)",
     "figures": ("mg.fig8", "mg.figB5", "mg.figX7", "mg.figX8")},
    {"what": "COCO and GradCAM runs: Energy and L1 only (the paper: also PPCE and RRR*)",
     "figures": ("mg.fig5b", "mg.figA2", "mg.figA3", "mg.figB2", "mg.figB4", "mg.figX2", "mg.figX4",
                 "mg.figX5", "mg.figX6")},
    {"what": "additional backbones: Energy and L1 only",
     "figures": ("mg.fig7", "mg.figB9")},
    {"what": "limited annotations 10 % / 25 % / 100 % instead of 1 % / 10 % / 100 % (1 % of a small "
             "synthetic set is a handful of images)",
     "figures": ("mg.fig12", "mg.figB7", "mg.figX9", "mg.figX10")},
    {"what": "Waterbirds: B-cos only (Table C1: also Vanilla and X-DNN); one seed and one annotation subset "
             "(the paper: 2 x 2 runs per row, baselines 2), 25 % annotations instead of 1 %, lambda 0.5 "
             "instead of 0.05; guided runs train 5 epochs from the baselines' fresh initialisation while the "
             "baselines train 10 (the paper: both 350 epochs from ImageNet weights); no spread shown; the "
             "modified val split saturates (the shortcut alone solves groups 0 and 3), so accuracy ties go to "
             "the later epoch",
     "figures": ("mg.tab1", "mg.tabC1", "mg.fig1", "mg.fig13", "mg.figC1")},
    {"what": "COCO dilated boxes: 50 % only (the paper's Fig. A4: 10 / 25 / 50 %), one lambda per loss",
     "figures": ("mg.figA4",)},
    {"what": "B-cos DenseNet-121 / ViT-S replaced by tiny B-cos DenseNet / ViT variants",
     "figures": ("mg.fig7", "mg.figB9")},
)


def deviations_for(figure_id: str) -> list[str]:
    """The demo deviations that affect `figure_id` (for printing under the figure)."""
    return [d["what"] for d in DEMO_DEVIATIONS if "*" in d["figures"] or figure_id in d["figures"]]


def _settings(profile: str) -> dict[str, Any]:
    if profile not in SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(SETTINGS)}")
    return SETTINGS[profile]


def _data_path(profile: str, data_root: str, dataset: str) -> str:
    return f"{data_root}/synthetic/{dataset}" if profile == "demo" else f"{data_root}/{dataset}"


def baselines(profile: str, dataset: str, kind: str, arch: str | None = None, *, task: str | None = None,
              seed: int = 0, data_root: str = "data") -> list[RunConfig]:
    """The baseline runs (one per swept lr) a guided configuration starts from."""
    s = _settings(profile)
    arch = arch or s["arch"]
    extra: dict[str, Any] = {}
    if profile != "demo":
        extra["weights"] = PAPER_WEIGHTS[(kind, arch)]
    lrs = (s["guided_lr"]["waterbirds"],) if dataset == "waterbirds" else s["baseline_lrs"]
    runs = [RunConfig(paper="mg", dataset=dataset, data_root=_data_path(profile, data_root, dataset),
                      model_kind=kind, arch=arch, task=task, seed=seed, lr=lr,
                      epochs=round(s["baseline_epochs"][dataset] * s.get("baseline_epochs_scale", {}).get(kind, 1)),
                      batch_size=s["batch_size"], image_size=s["image_size"], extra=dict(extra),
                      profile=profile, threads=s["threads"])
            for lr in lrs]
    return [capped(r) for r in runs] if profile == "rehearsal" else runs


def guided(profile: str, dataset: str, kind: str, method: str, tap: str, loss: str, lam: float, *,
           arch: str | None = None, fraction: float = 1.0, dilation: float = 0.0, task: str | None = None,
           seed: int = 0, annotation_seed: int = 0, data_root: str = "data") -> RunConfig:
    """One guided run, starting from the best of its baselines or from their initialisation (the
    dataset's ``guided_init``; a run from the initialisation keeps the baselines' ``weights``)."""
    s = _settings(profile)
    base = baselines(profile, dataset, kind, arch, task=task, seed=seed, data_root=data_root)
    ids = [b.run_id for b in base]
    extra = {"annotation_seed": annotation_seed} if annotation_seed else {}
    start = s["guided_init"][dataset]
    if start == "init":
        init_from: str | list[str] = FROM_INIT
        extra = {**{k: v for k, v in base[0].extra.items() if k == "weights"}, **extra}
    elif start == "baseline":
        init_from = ids[0] if len(ids) == 1 else ids
    else:
        raise ValueError(f"guided_init[{dataset!r}] = {start!r}; use 'baseline' or 'init'")
    return replace(base[0], method=method, tap=tap, loss=loss, lam=float(lam),
                   annotation_fraction=fraction, dilation=dilation, epochs=s["guided_epochs"][dataset],
                   lr=s["guided_lr"][dataset], init_from=init_from, extra=extra)


def _lambdas(s: dict[str, Any], loss: str, fraction: float = 1.0) -> tuple[float, ...]:
    if fraction >= 1.0:
        return tuple(s["lambdas"][loss])
    if s["lambdas_limited"] is not None:
        return tuple(s["lambdas_limited"][loss])
    return tuple(lam / fraction for lam in s["lambdas"][loss])


def _guided_configs(group: str, profile: str, data_root: str) -> list[RunConfig]:
    s = _settings(profile)
    out: list[RunConfig] = []

    def add(dataset: str, kind: str, method: str, tap: str, losses: Iterable[str], **kw: Any) -> None:
        for loss in losses:
            for lam in _lambdas(s, loss, kw.get("fraction", 1.0)):
                out.append(guided(profile, dataset, kind, method, tap, loss, lam, data_root=data_root, **kw))

    if group not in GROUPS:
        raise ValueError(f"unknown model-guidance group {group!r}; choose one of {list(GROUPS)}")
    spec = s["groups"][group]
    models, losses = spec["models"], spec["losses"]
    if group in ("voc-main", "coco-main"):
        dataset = "voc2007" if group == "voc-main" else "coco2014"
        for kind, method in models:
            for tap in ("input", "final"):
                add(dataset, kind, method, tap, losses)
    elif group == "voc-layers":
        main = s["groups"]["voc-main"]
        for kind, method in models:
            for tap in ("input", "mid1", "mid2", "mid3", "final"):
                # Input/Final are voc-main's runs (shared); Mid1-3 use this group's losses
                add("voc2007", kind, method, tap, main["losses"] if tap in ("input", "final") else losses)
    elif group in ("voc-dilation", "coco-dilation"):
        dataset = "voc2007" if group == "voc-dilation" else "coco2014"
        for kind, method in models:
            for d in (0.0, *spec.get("dilations", s["dilations"])):
                add(dataset, kind, method, "input", losses, dilation=d)
    elif group == "voc-limited":
        for kind, method in models:
            for f in (*s["fractions"], 1.0):
                add("voc2007", kind, method, "input", losses, fraction=f)
    elif group in ("voc-gradcam", "coco-gradcam"):
        dataset = "voc2007" if group == "voc-gradcam" else "coco2014"
        for kind, _ in models:
            add(dataset, kind, "gradcam", "final", losses)
    elif group == "voc-backbones":
        for arch in s["backbones"]:
            for kind, method in models:
                add("voc2007", kind, method, "input", losses, arch=arch)
    elif group == "waterbirds":
        for task in ("bird", "place"):
            for kind, method in models:
                for tap in ("input", "final"):
                    for loss in losses:
                        for seed in s["waterbirds_seeds"]:
                            for subset in s["waterbirds_subsets"]:
                                out.append(guided(profile, "waterbirds", kind, method, tap, loss,
                                                  s["waterbirds_lambda"], fraction=s["waterbirds_fraction"],
                                                  task=task, seed=seed, annotation_seed=subset,
                                                  data_root=data_root))
    return out


def group_configs(group: str, profile: str, data_root: str = "data") -> list[RunConfig]:
    """Every run of `group` in `profile`: the baselines its guided runs need, then the guided runs
    (duplicates removed, order kept)."""
    guided_runs = _guided_configs(group, profile, data_root)
    base: list[RunConfig] = []
    for g in guided_runs:
        base += baselines(profile, g.dataset, g.model_kind, g.arch, task=g.task, seed=g.seed, data_root=data_root)
    return unique_runs(base + guided_runs)


def all_configs(profile: str, data_root: str = "data", groups: Iterable[str] = GROUPS) -> list[RunConfig]:
    """Every run of every group, once."""
    out: list[RunConfig] = []
    for g in groups:
        out += group_configs(g, profile, data_root)
    return unique_runs(out)


def resolve_configs(configs: Iterable[RunConfig | dict[str, Any]] | None = None, group: str | None = None,
                    profile: str = "demo", data_root: str = "data") -> list[RunConfig]:
    """The runs a training notebook executes: explicit `configs` (dicts or RunConfigs), else the
    runs of `group` in `profile`. Unknown dict keys are errors naming them."""
    explicit = [c if isinstance(c, RunConfig) else RunConfig.from_dict(c) for c in (configs or [])]
    if explicit:
        return explicit
    if group is None:
        raise ValueError("give `configs` (a list of run configs) or `group` (one of "
                         f"{list(GROUPS)}) to choose the runs")
    return group_configs(group, profile, data_root)
