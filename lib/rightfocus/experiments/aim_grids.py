"""AIM experiment groups as data, for the ``paper``, ``demo`` and ``rehearsal`` profiles (Alshami et al.
2025). ``rehearsal`` is the paper grid (same runs, backbones, resolutions, batch size, seeds) with every
run capped (`REHEARSAL_CAPS`) for `make rehearse` on stand-in data and weights.

Each group lists run configurations (`RunConfig` with ``paper="aim"``); runs that several groups need
(the main grid's CUB runs are also the center-bias group's, its Waterbirds-95 runs the threshold
group's) have equal configs and hence equal run ids, so they exist once.

AIM settings live in ``RunConfig.extra`` (keys and defaults: `AIM_EXTRA_DEFAULTS`); ``lam`` is the
active-area loss weight (Eq. 7, 6 in every experiment) and ``lr`` the backbone learning rate
(Table 5). ``extra["tau"] = None`` means "no annealing", i.e. no mask loss at all (Table 15).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from rightfocus.aim_options import AIM_EXTRA_DEFAULTS, EVAL_CENTER_CROP  # noqa: F401  (grid data, re-exported)
from rightfocus.data.registry import paper_datasets
from rightfocus.runs.config import CAP_FIELDS, RunConfig, unique_runs
from rightfocus.models.backbones import pretrained_files

#: ImageNet-1k torchvision release files the AIM backbones start from (looked up under $WEIGHTS_ROOT;
#: never downloaded): each backbone's ``Backbone.pretrained["aim"]`` (models/backbones/)
PRETRAINED_FILES: dict[str, str] = pretrained_files("aim")

#: Dataset key -> (loader name for `rightfocus.data.load_dataset`, sub-folder of DATA_ROOT, loader
#: options): the `rightfocus.data.DATASETS` entries AIM's grids name. Both Waterbirds releases live in
#: one folder (the loader picks one by `confounder`).
DATASETS: dict[str, tuple[str, str, dict[str, Any]]] = paper_datasets("aim")


BIRDS = ("cub", "waterbirds95", "waterbirds100", "travelingbirds")
GROUPS = ("aim-main", "aim-threshold", "aim-noaux", "aim-onemask", "aim-bottomup", "aim-edgeinit",
          "aim-centerbias")

#: Per-profile training recipe (everything a run needs besides its variant).
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {
        "epochs": 200, "batch_size": 512, "image_size": 224, "seeds": (0, 1, 2, 3), "lam": 6.0,  # Eq. 7
        "backbone_lr": {"convnext_tiny": 7e-6, "resnet50": 1e-3, "resnet101": 1e-3},   # Table 5
        "image_size_by_dataset": {"travelingbirds": 299},                              # A.4.3
        "extra": {"anneal_epochs": 100, "anneal_start": 0, "shifted_offset": 0.15},
    },
    "demo": {
        # chosen from the operating-point check (`figures.operating_point`: a run's final validation
        # active share within 5 points of tau) within `make demo`'s 2-core budget: batch 8 for more
        # mask-estimator steps, lambda 30 (at the paper's 6 the classification loss holds the share
        # above tau), tau annealed over the first epoch and Gumbel noise in it only (the noised share
        # the loss sees is not the noise-free share evaluation sees), then five noise-free epochs at
        # tau: 19 of 25 runs reach it. The trials: benchmarks/recorded/aim_demo_schedule_2026-12-01.md
        "epochs": 6, "batch_size": 8, "image_size": 32, "seeds": (0,), "lam": 30.0,
        "backbone_lr": {"tiny": 1e-3},
        "image_size_by_dataset": {},
        "extra": {"anneal_epochs": 1, "anneal_start": 0, "topdown_lr": 1e-2, "weight_decay": 1e-4,
                  "noise_off_fraction": 0.1,
                  "randaugment": None, "dropout": 0.0, "drop_path": 0.0, "fixed_images": 4,
                  "pretrained": False, "shifted_offset": 0.15},
    },
}

#: the rehearsal's caps: 2 epochs with the threshold annealed over the first (so every phase of the
#: schedule runs), a few steps per epoch, a small evaluation subset
REHEARSAL_CAPS: dict[str, int] = {"epochs": 2, "anneal_epochs": 1, "max_steps_per_epoch": 2,
                                  "max_eval_images": 16}
PROFILES["rehearsal"] = {**PROFILES["paper"], "epochs": REHEARSAL_CAPS["epochs"],
                         "extra": {**PROFILES["paper"]["extra"], "anneal_epochs": REHEARSAL_CAPS["anneal_epochs"]}}


def rehearsal_key(config: RunConfig) -> tuple:
    """What the CPU rehearsal samples one run of, per group: (model kind, backbone, last top-down stage
    / direction), the AIM counterpart of MG's (kind, tap)."""
    e = config.extra or {}
    return (config.model_kind, config.arch, e.get("stage"), e.get("direction"))


#: the switches an ablation group flips between two otherwise equal AIM runs (Tables 12-14, App. D.5)
ABLATION_SWITCHES: tuple[str, ...] = ("aux_losses", "single_mask", "edge_init")


def _partners(config: RunConfig, group: list[RunConfig]) -> list[RunConfig]:
    """The runs of `group` the figures compare AIM run `config` with: the baseline on the same dataset
    and backbone, and every run equal to it but for one ablation switch (`ABLATION_SWITCHES`)."""
    if config.model_kind != "aim":
        return []
    out = []
    for other in group:
        if other.run_id == config.run_id or (other.dataset, other.arch, other.seed) != (
                config.dataset, config.arch, config.seed):
            continue
        if other.model_kind == "vanilla":
            out.append(other)
            continue
        differs = {k for k in set(config.extra) | set(other.extra) if config.extra.get(k) != other.extra.get(k)}
        if len(differs) == 1 and differs <= set(ABLATION_SWITCHES):
            out.append(other)
    return out


#: (dataset, paper backbone) pairs whose AIM run and baseline the qualitative figures of a group draw by
#: name: aim-main's Fig. 3 (Hard-ImageNet, Traveling Birds, Waterbirds-100, ImageNet-100) and Fig. 11
#: (CUB, Traveling Birds, Waterbirds-100, Hard-ImageNet) with ConvNeXt-tiny, Figs. 13-24
#: (`figures.aim_qualitative.QUALITATIVE`), Figs. 6/7 and the study
FIGURE_RUNS: dict[str, tuple[tuple[str, str], ...]] = {
    "aim-main": tuple((ds, "convnext_tiny") for ds in BIRDS + ("imagenet100", "hardimagenet"))
    + (("cub", "resnet50"), ("waterbirds95", "resnet50"), ("travelingbirds", "resnet50"),
       ("waterbirds100", "resnet50"), ("travelingbirds", "resnet101")),
}


#: the active-area thresholds the qualitative figures (Figs. 11, 13-24) show side by side: App. A.3
#: anneals "the initial 100% active area to either 35% or 25%", and each figure compares "AIM models
#: with different mask active-area thresholds" (App. C.3)
QUALITATIVE_TAUS: tuple[float, ...] = (0.25, 0.35)

#: (dataset, paper backbone, T) of the ResNet qualitative figures (App. C.3: Figs. 15, 16, 19, 20, 21, 22,
#: 24); the paper grid trains these at every `QUALITATIVE_TAUS` (Table 10 needs only 25 %)
RESNET_QUALITATIVE: tuple[tuple[str, str, int], ...] = (
    ("cub", "resnet50", 2), ("cub", "resnet50", 3), ("waterbirds95", "resnet50", 2), ("waterbirds95", "resnet50", 3),
    ("travelingbirds", "resnet101", 2), ("travelingbirds", "resnet50", 2), ("waterbirds100", "resnet50", 2))


def rehearsal_companions(group: str, kept: list[RunConfig], runs: list[RunConfig]) -> list[RunConfig]:
    """What the CPU rehearsal keeps in `group` beside its sampled runs `kept` (`makefile.sample_groups`):
    the first AIM run of every `FIGURE_RUNS` pair, and for every kept or named AIM run its baseline and
    ablation twins (`_partners`). Without them the pair-drawing renderers (Fig. 5, Tables 12-14, 16) and
    the qualitative figures would have nothing to draw."""
    firsts = [next((r for r in runs if r.model_kind == "aim" and (r.dataset, r.extra.get("paper_arch")) == pair), None)
              for pair in FIGURE_RUNS.get(group, ())]
    named = [r for r in firsts if r is not None]
    return named + [p for c in [*kept, *named] for p in _partners(c, runs)]


#: the AIM ids drawn from training results (schematics and config tables are not affected)
AIM_RESULT_IDS: tuple[str, ...] = ("aim.fig1", "aim.fig[3-8]", "aim.fig1[0-9]", "aim.fig2[0-6]", "aim.fig29",
                                   "aim.tab[1-3]", "aim.tab[7-9]", "aim.tab1[0-6]", "aim.study", "aim.claims")

#: What the demo profile changes from the paper, printed under every AIM figure/table (entries in
#: the shape of `rightfocus.experiments.grids.DEMO_DEVIATIONS`: text + the ids they affect).
AIM_DEMO_DEVIATIONS: list[dict[str, Any]] = [
    {"text": "AIM demo: synthetic datasets (a few hundred images) instead of CUB / Waterbirds / "
             "TravelingBirds / ImageNet-100 / Hard-ImageNet", "figures": list(AIM_RESULT_IDS)},
    {"text": "AIM demo: one tiny ResNet-shaped backbone (the vanilla `tiny`: widths 16-128, 32 px, random "
             "init; stages numbered as ResNet's, so T=1 spans layers 4..1) stands in for ConvNeXt-tiny, "
             "ResNet-50 and ResNet-101 (ImageNet-pretrained, 224/299 px in the paper)",
     "figures": list(AIM_RESULT_IDS)},
    {"text": "AIM demo: 6 epochs with the threshold annealed over the first (paper: 200 over 100), "
             "Gumbel noise in the first epoch only (DynConv, as the paper: the first 80 %), mask-loss weight "
             "lambda 30 (paper 6), one seed (paper: 4 runs); chosen from the operating-point check "
             "(final active share vs tau, `figures.operating_point`)", "figures": list(AIM_RESULT_IDS)},
    {"text": "AIM demo: no RandAugment, dropout or drop path; backbone learning rate 1e-3 (paper 7e-6 for "
             "pretrained ConvNeXt), top-down pathway 1e-2 (as the paper); batch 8 (paper 512) for more "
             "mask-estimator steps", "figures": list(AIM_RESULT_IDS)},
    {"text": "AIM demo: fewer thresholds (10/25/40 %) and variants per ablation than the paper (25 % only "
             "in the main grid and ablations)", "figures": ["aim.fig25", "aim.tab1", "aim.tab9", "aim.tab10",
                                                           "aim.tab11", "aim.tab12", "aim.tab13", "aim.tab14",
                                                           "aim.tab7"]},
]


def _archs(profile: str) -> dict[str, str]:
    """The paper's backbones -> the architecture the profile trains for them."""
    if profile == "demo":
        return {"convnext_tiny": "tiny", "resnet50": "tiny", "resnet101": "tiny"}
    return {"convnext_tiny": "convnext_tiny", "resnet50": "resnet50", "resnet101": "resnet101"}


def make_config(profile: str, dataset: str, arch: str, *, aim: bool = True, seed: int = 0,
                data_root: str = "data", **extra: Any) -> RunConfig:
    """One AIM (or vanilla baseline) run of `profile` on `dataset` with paper backbone `arch`.

    `extra` overrides `AIM_EXTRA_DEFAULTS` (e.g. ``stage=2, tau=0.35``). Baselines keep only the
    recipe keys, so a baseline's id does not depend on AIM-only settings.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {list(PROFILES)}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown AIM dataset {dataset!r}; use one of {list(DATASETS)}")
    prof = PROFILES[profile]
    real_arch = _archs(profile)[arch]
    values = {**AIM_EXTRA_DEFAULTS, **prof["extra"], **extra}
    values["paper_arch"] = arch  # which of the paper's backbones this run stands for
    # evaluation extras follow from the dataset, so a run shared by groups has one config:
    # every CUB run is also tested on shifted-center crops (A.6), every WB-95 run with the
    # guided attributions of Table 8
    if dataset != "cub":
        values["shifted_offset"] = None
    values["guided_eval"] = bool(values.get("guided_eval")) or dataset == "waterbirds95"
    if not aim:
        for key in ("stage", "tau", "anneal_start", "anneal_epochs", "aux_losses", "single_mask",
                    "direction", "blocks", "edge_init", "topdown_lr"):
            values.pop(key, None)
    if values.get("direction") == "bottom_up" and values.get("blocks") is None:
        raise ValueError("bottom-up AIM runs need extra blocks=[...] (backbone blocks to mask)")
    if values.get("blocks") is not None:
        values["blocks"] = list(values["blocks"])
    lr = prof["backbone_lr"][real_arch] if real_arch in prof["backbone_lr"] else prof["backbone_lr"][arch]
    caps = {k: REHEARSAL_CAPS[k] for k in CAP_FIELDS} if profile == "rehearsal" else {}
    return RunConfig(
        # demo data: `rightfocus make-data` writes each kind under its loader's name
        paper="aim", dataset=dataset,
        data_root=f"{data_root}/{DATASETS[dataset][0] if profile == 'demo' else DATASETS[dataset][1]}",
        model_kind="aim" if aim else "vanilla", arch=real_arch, lam=float(prof["lam"]) if aim else 0.0,
        seed=seed, epochs=prof["epochs"], lr=lr, batch_size=prof["batch_size"],
        image_size=prof["image_size_by_dataset"].get(dataset, prof["image_size"]),
        extra=values, profile=profile,
        # tiny CPU models: one thread per run is fastest (2 threads on a busy 2-core machine cost ~10x
        # the CPU time, measured); `make -j` runs groups side by side
        threads=1 if profile == "demo" else None, **caps,
    )


def _variants(group: str, profile: str) -> list[dict[str, Any]]:
    """The group's runs as keyword sets for `make_config` (seed added by `group_configs`)."""
    demo = profile == "demo"
    v: list[dict[str, Any]] = []

    def base(ds: str, arch: str = "convnext_tiny") -> None:
        v.append({"dataset": ds, "arch": arch, "aim": False})

    def aim(ds: str, arch: str = "convnext_tiny", **kw: Any) -> None:
        v.append({"dataset": ds, "arch": arch, "aim": True, **kw})

    if group == "aim-main":
        for ds in BIRDS + ("imagenet100", "hardimagenet"):
            base(ds)
            for t in (1, 2):
                for tau in (0.25,) if demo else (0.25, 0.35):
                    aim(ds, stage=t, tau=tau)
        if not demo:  # ResNet rows of Fig. 4 / Table 10 and Figs. 15-24
            for ds in BIRDS:
                for arch in ("resnet50", "resnet101"):
                    base(ds, arch)
                    for t in (2, 3):
                        for tau in QUALITATIVE_TAUS if (ds, arch, t) in RESNET_QUALITATIVE else (0.25,):
                            aim(ds, arch, stage=t, tau=tau)
    elif group == "aim-threshold":
        base("waterbirds95")
        for tau in (0.10, 0.25, 0.40) if demo else (0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40):
            for t in (1, 2):
                aim("waterbirds95", stage=t, tau=tau)
    elif group == "aim-noaux":
        stages = {"convnext_tiny": (1,)} if demo else {"convnext_tiny": (1, 2), "resnet50": (2, 3)}
        for ds in ("cub", "waterbirds95"):
            for arch, ts in stages.items():
                for t in ts:
                    for tau in (0.25,) if demo else (0.25, 0.35, None):
                        for aux in (True, False):
                            aim(ds, arch, stage=t, tau=tau, aux_losses=aux)
    elif group == "aim-onemask":
        for t in (1, 2):
            for tau in (0.25,) if demo else (0.25, 0.35, None):
                for single in (False, True):
                    aim("cub", stage=t, tau=tau, single_mask=single)
    elif group == "aim-bottomup":
        base("cub")
        for t in (1, 2):
            aim("cub", stage=t, tau=0.25)
        for tau in (0.25,) if demo else (0.25, 0.35):
            for blocks in ([1, 2, 3], [2, 3], [3]):
                aim("cub", tau=tau, direction="bottom_up", blocks=blocks)
        for tau in (0.25, None):  # Table 15 on Waterbirds-95
            aim("waterbirds95", stage=1, tau=tau)
            aim("waterbirds95", tau=tau, direction="bottom_up", blocks=[1, 2, 3])
    elif group == "aim-edgeinit":
        for edge in (False, True):
            aim("cub", stage=2, tau=0.25, edge_init=edge)
    elif group == "aim-centerbias":
        base("cub")
        for t in (1, 2):
            for tau in (0.25, None) if demo else (0.25, 0.35, None):
                aim("cub", stage=t, tau=tau)
    else:
        raise ValueError(f"unknown AIM group {group!r}; use one of {list(GROUPS)}")
    return v


def group_configs(group: str, profile: str, data_root: str = "data") -> list[RunConfig]:
    """Every run of `group` in `profile` (one per seed), without duplicates."""
    seeds = PROFILES[profile]["seeds"] if profile in PROFILES else ()
    root = f"{data_root}/synthetic" if profile == "demo" and not data_root.endswith("synthetic") else data_root
    out: dict[str, RunConfig] = {}
    for kw in _variants(group, profile):
        for seed in seeds:
            cfg = make_config(profile, seed=seed, data_root=root, **kw)
            out.setdefault(cfg.run_id, cfg)
    return list(out.values())


def all_configs(profile: str, data_root: str = "data", groups: Iterable[str] = GROUPS) -> list[RunConfig]:
    """The union of the groups' runs (each run once)."""
    return unique_runs(c for g in groups for c in group_configs(g, profile, data_root))
