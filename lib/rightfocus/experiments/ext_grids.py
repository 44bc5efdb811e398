"""Experiments beyond both papers, as data: guidance without hand-drawn boxes (inventory ids ``ext.*``).

- ``ext-masks`` (`ext.boxes_vs_masks`): the model-guidance paper argues that boxes guide as well as
  segmentation masks at a fraction of the cost (MG Sec. 1, contribution 1) but never trains on masks.
  B-cos (B-cos attributions) and Vanilla (IxG) at the input, Energy and L1, guided by boxes vs by the
  datasets' segmentations (`training.mask_sources`) at equal annotation budgets, on VOC, COCO and
  Waterbirds (bird task). The box-guided runs are the MG grid's own where it has them (equal configs,
  equal run ids).
- ``ext-annotation-free`` (`ext.annotation_free`): a Vanilla model guided with NO annotation, by (a) a
  guided B-cos teacher's input explanations (the ``distill`` loss) and (b) an AIM run's merged masks
  (Energy), against the same Vanilla model unguided and box-guided. AIM's datasets are birds only,
  so (b) is on Waterbirds (AIM's Waterbirds-100 run: same images and classes as MG's bird task).

Profiles: ``paper`` (the MG paper's models, resolution, epochs and lambdas via `grids.guided`, budgets
100 / 10 / 1 %), ``demo`` (the demo's runs; the few runs it adds are listed in `EXT_DEMO_DEVIATIONS`).
`GROUP_NEEDS` names the other papers' demo groups an ext group reads runs of (the demo's Make waits
for them); in the paper profile each run waits for the runs its mask source reads (`makefile`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable

from rightfocus.experiments import aim_grids, grids
from rightfocus.runs.config import RunConfig, unique_runs

GROUPS: tuple[str, ...] = ("ext-masks", "ext-annotation-free")

#: demo: the other papers' groups (paper, group) whose runs an ext group reads; they train first
GROUP_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "ext-masks": (("mg", "voc-main"), ("mg", "voc-limited"), ("mg", "coco-main"), ("mg", "waterbirds")),
    "ext-annotation-free": (("mg", "voc-main"), ("mg", "waterbirds"), ("aim", "aim-main")),
}

#: the models of ext-masks: (kind, native method) at the input
MASK_MODELS: tuple[tuple[str, str], ...] = (("bcos", "bcos"), ("vanilla", "ixg"))
MASK_LOSSES: tuple[str, ...] = ("energy", "l1")

#: per profile: which datasets / budgets / models each group covers, and the distillation weight
SETTINGS: dict[str, dict[str, Any]] = {
    "paper": {
        "mask_datasets": ("voc2007", "coco2014"),
        "fractions": (1.0, 0.1, 0.01),
        "mask_models": MASK_MODELS,
        "waterbirds_models": MASK_MODELS,
        "free_datasets": ("voc2007", "coco2014"),
        "distill_lambda": 1.0,
    },
    "demo": {
        # VOC at 100 % and 10 % (voc-limited's box runs), COCO at 100 % (coco-main's); IxG at 100 % only
        "mask_datasets": ("voc2007", "coco2014"),
        "fractions": (1.0, 0.1),
        "fractions_by": {("coco2014", "bcos"): (1.0,), ("voc2007", "vanilla"): (1.0,), ("coco2014", "vanilla"): ()},
        # Energy only for IxG and on Waterbirds: the demo's training budget for ext is ~60 CPU-seconds
        "losses_by": {("voc2007", "vanilla"): ("energy",), ("waterbirds", "bcos"): ("energy",)},
        "mask_models": MASK_MODELS,
        "waterbirds_models": (("bcos", "bcos"),),
        "free_datasets": ("voc2007",),
        "distill_lambda": 1.0,
    },
}
SETTINGS["rehearsal"] = SETTINGS["paper"]

#: what the demo changes from the ext groups' paper profile (printed under the ext ids)
EXT_DEMO_DEVIATIONS: tuple[dict[str, Any], ...] = (
    {"what": "ext demo: the MG demo's models, data and training (tiny models at 32 px, 2 guided epochs, "
             "Waterbirds 5, one lambda per loss, one seed)",
     "figures": ("ext.boxes_vs_masks", "ext.annotation_free", "ext.guidance_claims")},
    {"what": "ext.boxes_vs_masks demo: budgets 100 % and 10 % (paper profile: also 1 %) on VOC with B-cos, "
             "100 % only with IxG (Energy only) and on COCO (B-cos only); Waterbirds: B-cos with Energy only at "
             "the MG demo's 25 % (paper profile: both models, Energy and L1, at 1 %)",
     "figures": ("ext.boxes_vs_masks", "ext.guidance_claims")},
    {"what": "ext.annotation_free demo: VOC only for the teacher (paper profile: also COCO); the AIM source on "
             "Waterbirds from the AIM demo's run (tiny, 6 epochs); distillation weight 1.0, not tuned",
     "figures": ("ext.annotation_free", "ext.guidance_claims")},
    {"what": "ext metric suite demo: scored on the MG demo's runs (tiny models at 32 px, 2 guided epochs, one "
             "lambda per loss, one seed) and the AIM demo's main runs (6 epochs); the demo's suite leaves out Top-K",
     "figures": ("ext.metric_agreement*", "ext.sanity")},
)


def deviations_for(figure_id: str) -> list[str]:
    """The ext demo deviations that affect `figure_id`."""
    import fnmatch

    return [d["what"] for d in EXT_DEMO_DEVIATIONS if any(fnmatch.fnmatch(figure_id, p) for p in d["figures"])]


def _settings(profile: str) -> dict[str, Any]:
    if profile not in SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(SETTINGS)}")
    return SETTINGS[profile]


def _lambda(profile: str, loss: str, fraction: float) -> float:
    lams = grids._lambdas(grids._settings(profile), loss, fraction)  # the MG grid's lambda (first of its list)
    return float(lams[len(lams) // 2])


def _with_source(config: RunConfig, source: str) -> RunConfig:
    return config if source == "boxes" else replace(config, mask_source=source)


def mask_runs(profile: str, data_root: str = "data") -> list[RunConfig]:
    """ext-masks' guided runs: boxes vs segmentation, per dataset, model, loss and budget."""
    s = _settings(profile)
    out: list[RunConfig] = []
    for dataset in s["mask_datasets"]:
        for kind, method in s["mask_models"]:
            for fraction in s.get("fractions_by", {}).get((dataset, kind), s["fractions"]):
                for loss in s.get("losses_by", {}).get((dataset, kind), MASK_LOSSES):
                    lam = _lambda(profile, loss, fraction)
                    box = grids.guided(profile, dataset, kind, method, "input", loss, lam, fraction=fraction,
                                       data_root=data_root)
                    out += [box, _with_source(box, "segmentation")]
    g = grids._settings(profile)
    for kind, method in s["waterbirds_models"]:
        for loss in s.get("losses_by", {}).get(("waterbirds", kind), MASK_LOSSES):
            box = grids.guided(profile, "waterbirds", kind, method, "input", loss, g["waterbirds_lambda"],
                               fraction=g["waterbirds_fraction"], task="bird", seed=g["waterbirds_seeds"][0],
                               annotation_seed=g["waterbirds_subsets"][0], data_root=data_root)
            out += [box, _with_source(box, "segmentation")]
    return out


def teacher_run(profile: str, dataset: str, data_root: str = "data") -> RunConfig:
    """The guided B-cos teacher: the MG grid's B-cos input run with Energy at 100 % (Waterbirds: its
    bird-task run)."""
    if dataset == "waterbirds":
        g = grids._settings(profile)
        return grids.guided(profile, "waterbirds", "bcos", "bcos", "input", "energy", g["waterbirds_lambda"],
                            fraction=g["waterbirds_fraction"], task="bird", seed=g["waterbirds_seeds"][0],
                            annotation_seed=g["waterbirds_subsets"][0], data_root=data_root)
    return grids.guided(profile, dataset, "bcos", "bcos", "input", "energy", _lambda(profile, "energy", 1.0),
                        data_root=data_root)


def aim_run(profile: str, data_root: str = "data") -> RunConfig:
    """AIM's Waterbirds-100 run whose masks guide (main grid, ConvNeXt-tiny's stand-in, AIM[1], tau 25 %)."""
    root = f"{data_root}/synthetic" if profile == "demo" else data_root
    seed = aim_grids.PROFILES[profile]["seeds"][0]
    return aim_grids.make_config(profile, "waterbirds100", "convnext_tiny", seed=seed, data_root=root,
                                 stage=1, tau=0.25)


def free_runs(profile: str, data_root: str = "data") -> list[RunConfig]:
    """ext-annotation-free: per dataset a Vanilla (IxG, input) model guided by boxes (Energy), by the
    B-cos teacher (distill) and, on Waterbirds, by AIM's masks (Energy); its baseline comes with it."""
    s, g = _settings(profile), grids._settings(profile)
    out: list[RunConfig] = []
    for dataset in (*s["free_datasets"], "waterbirds"):
        if dataset == "waterbirds":
            kw: dict[str, Any] = {"fraction": g["waterbirds_fraction"], "task": "bird", "seed": g["waterbirds_seeds"][0],
                                  "annotation_seed": g["waterbirds_subsets"][0], "data_root": data_root}
            lam = g["waterbirds_lambda"]
        else:
            kw, lam = {"data_root": data_root}, _lambda(profile, "energy", 1.0)
        box = grids.guided(profile, dataset, "vanilla", "ixg", "input", "energy", lam, **kw)
        # no boxes: every image's signal comes from its source, so no annotation subset (the weights stay)
        free = replace(box, annotation_fraction=1.0,
                       extra={k: v for k, v in (box.extra or {}).items() if k != "annotation_seed"})
        teacher = teacher_run(profile, dataset, data_root)
        out += [teacher, box, replace(free, loss="distill", lam=s["distill_lambda"], mask_source=f"teacher:{teacher.run_id}")]
        if dataset == "waterbirds":
            out.append(replace(free, mask_source=f"aim:{aim_run(profile, data_root).run_id}"))
    return out


def group_configs(group: str, profile: str, data_root: str = "data") -> list[RunConfig]:
    """Every run of `group` in `profile`: baselines, then the guided runs (each once). The teacher and
    box-guided runs are the MG grid's (equal ids); the AIM run is AIM's and is not listed (its group
    trains it)."""
    if group == "ext-masks":
        runs = mask_runs(profile, data_root)
    elif group == "ext-annotation-free":
        runs = free_runs(profile, data_root)
    else:
        raise ValueError(f"unknown ext group {group!r}; choose one of {list(GROUPS)}")
    base: list[RunConfig] = []
    for r in runs:
        base += grids.baselines(profile, r.dataset, r.model_kind, r.arch, task=r.task, seed=r.seed, data_root=data_root)
    return unique_runs([*base, *runs])


def all_configs(profile: str, data_root: str = "data", groups: Iterable[str] = GROUPS) -> list[RunConfig]:
    """The union of the groups' runs (each run once)."""
    return unique_runs(c for g in groups for c in group_configs(g, profile, data_root))


def rehearsal_key(config: RunConfig) -> tuple:
    """One sampled run per (dataset, kind, mask source kind, loss) in the CPU rehearsal."""
    return (config.dataset, config.model_kind, config.mask_source.split(":")[0], config.loss)
