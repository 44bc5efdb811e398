"""`rightfocus check`: before a GPU hour is spent, is everything a paper grid needs in place?

`run_check(paper, profile, data_root, weights_root, ...)` looks at every dataset the grid reads
(`check.datasets`: layout, counts against the releases' `check.known_counts`, files present, a sample
decoded), every weights file it names (`check.weights`: found, readable, fits its model), the disk,
the device and the time (`check.resources`: free space against the checkpoint volume, CUDA, GPU-hours
per group from measured step times). It writes nothing. Every problem is one line with its fix
(`Problem.line`); errors make `CheckReport.exit_code` non-zero. `make mg` / `make aim` run it first
for the paper profile, so a grid with a missing piece fails before any file is written.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from rightfocus.check.datasets import DataSpec, SplitRow, check_datasets, data_specs
from rightfocus.check.known_counts import KNOWN, KnownCounts
from rightfocus.check.problems import ERROR, WARNING, Problem
from rightfocus.check.resources import (DeviceInfo, StepTime, device_info, device_problems, disk_estimate,
                                        measure_steps, run_hours, step_key)
from rightfocus.check.weights import WeightsNeed, check_weights, weights_needs
from rightfocus.runs.config import RunConfig

__all__ = ["CheckReport", "KNOWN", "KnownCounts", "Problem", "preflight", "run_check", "ERROR", "WARNING"]


@dataclass
class CheckReport:
    """Everything `run_check` found; `render()` is what the command prints."""

    paper: str
    profile: str
    data_root: str
    weights_root: str | None
    results: str
    groups: dict[str, list[RunConfig]]
    specs: list[DataSpec] = field(default_factory=list)
    data_rows: list[SplitRow] = field(default_factory=list)
    weights: list[WeightsNeed] = field(default_factory=list)
    device: DeviceInfo | None = None
    disk: dict[str, Any] = field(default_factory=dict)
    steps: dict[tuple, StepTime] = field(default_factory=dict)
    hours: dict[str, float | None] = field(default_factory=dict)
    measure_note: str = ""
    metric_cost: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == WARNING]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    @property
    def unique_runs(self) -> int:
        return len({c.run_id for cs in self.groups.values() for c in cs})

    def render(self) -> str:
        out = [f"rightfocus check: paper {self.paper}, profile {self.profile}: {self.unique_runs} runs in "
               f"{len(self.groups)} group(s)",
               f"  data root {self.data_root}   weights root {self.weights_root or '(not set)'}   results {self.results}",
               "", "Datasets (counts found, and the release's where known)"]
        out += _table(["dataset", "split", "layout", "images", "annotations", "groups 0-3", "status"],
                      [[r.dataset, r.split, r.layout, r.images, r.annotations, r.groups or "-", r.status]
                       for r in self.data_rows])
        out += ["", "Weights"]
        out += _table(["file", "model", "runs", "status"],
                      [[w.file, w.label, str(w.runs), w.status] for w in self.weights]
                      ) if self.weights else ["  (the grid loads no pretrained weights)"]
        out += ["", "Device and disk"]
        if self.device:
            out.append(f"  device: {self.device.describe()}")
        if self.disk:
            out.append(f"  disk: {self.disk['free_gb']:.1f} GB free at {self.disk['at']}; checkpoints of the grid "
                       f"~{self.disk['volume_gb']:.1f} GB (parameter bytes x checkpoints kept per finished run: "
                       f"MG baselines 2, MG guided 1 + an assumed Pareto front of 10, AIM 1; plus one running "
                       f"job's resume state)")
        out += ["", "Runs and time" + (f" ({self.measure_note})" if self.measure_note else "")]
        for st in self.steps.values():
            out.append(f"  step {st.describe()}")
        rows = []
        for g, cs in self.groups.items():
            h = self.hours.get(g)
            rows.append([g, str(len(cs)), "-" if h is None else (f"{h:.1f}" if not math.isnan(h) else "?")])
        total = self.hours.get("__total__")
        rows.append(["all (each run once)", str(self.unique_runs),
                     "-" if total is None else (f"{total:.1f}" if not math.isnan(total) else "?")])
        unit = "hours on this CPU" if self.device and self.device.kind == "cpu" else "GPU-hours"
        out += _table(["group", "runs", f"{unit} (training steps)"], rows)
        if self.metric_cost:
            out.append(f"  {self.metric_cost}")
        sources = {k.release: k for k in (s.known for s in self.specs) if k is not None}
        if sources:
            out += ["", "Release counts compared against (rightfocus.check.known_counts)"]
            out += [f"  {name}: {k.source}" + (f"; {k.presence_only}" if k.presence_only else "")
                    for name, k in sources.items()]
        out += ["", f"Problems: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"]
        out += [p.line() for p in self.errors + self.warnings] or ["  none"]
        out.append("")
        out.append("FAILED: fix the errors above before running the grid" if self.errors else
                   "OK: the grid can start" + (" (read the warnings)" if self.warnings else ""))
        return "\n".join(out)


def metric_cost_line(profile: str, configs: list[RunConfig]) -> str:
    """The explanation-metric suite `profile` writes per evaluation, and its estimated CPU cost."""
    from rightfocus.metrics.registry import cost_estimate, suite_for

    suite = suite_for(profile)
    if not suite or not configs:
        return "explanation metrics: EPG / IoU only (the profile selects no further metric)"
    size = max(c.image_size for c in configs)
    per_1k = cost_estimate(suite, pairs=1000, pixels=size * size)
    return (f"explanation metrics ({', '.join(suite)}): ~{per_1k:.2f} CPU-s per 1,000 evaluated "
            f"(image, class) pairs at {size} px, on top of EPG / IoU (estimate from benchmarks/bench_metrics.py)")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda r: "  " + "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def _num_classes(specs: list[DataSpec], rows: list[SplitRow]) -> dict[str, int]:
    """Classes per grid dataset: as found, else the release's, else 10 (only sizes the estimate)."""
    out: dict[str, int] = {}
    for spec in specs:
        found = [r.num_classes for r in rows if r.dataset == spec.dataset and r.num_classes]
        out[spec.dataset] = found[0] if found else (spec.known.classes if spec.known and spec.known.classes else 10)
    return out


def _train_images(specs: list[DataSpec], rows: list[SplitRow]) -> dict[str, int | None]:
    """Train images per grid dataset: as found, else the release's count, else unknown."""
    out: dict[str, int | None] = {}
    for spec in specs:
        found = [r.num_images for r in rows if r.dataset == spec.dataset and r.split == "train" and r.num_images]
        known = spec.known.images.get("train") if spec.known else None
        out[spec.dataset] = found[0] if found else known
    return out


def grid_groups(paper: str, profile: str, data_root: str, groups: Iterable[str] | None = None
                ) -> dict[str, list[RunConfig]]:
    """The run configs of each of `groups` (default: all) of the paper's grid (`rightfocus.papers.PAPERS`);
    clear errors for an unknown paper or group."""
    from rightfocus.papers import PAPERS

    module = PAPERS[paper].grids
    names = list(groups or module.GROUPS)
    unknown = [g for g in names if g not in module.GROUPS]
    if unknown:
        raise ValueError(f"unknown {paper} group(s) {unknown}; use one of {list(module.GROUPS)}")
    return {g: module.group_configs(g, profile, data_root) for g in names}


def run_check(paper: str = "mg", profile: str = "paper", data_root: str = "data", weights_root: str | None = None,
              groups: Iterable[str] | None = None, results: str = "results", measure: bool = True,
              sample: int = 16, steps: int = 2, log: Callable[[str], None] | None = None) -> CheckReport:
    """Check everything the grid of `paper` in `profile` needs (see the module docstring); writes
    nothing. Progress goes to `log` (default: stderr)."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    by_group = grid_groups(paper, profile, data_root, groups)
    report = CheckReport(paper, profile, data_root, weights_root, results, by_group)
    every = list({c.run_id: c for cs in by_group.values() for c in cs}.values())

    log(f"rightfocus check: {len(every)} runs of {paper}/{profile}; datasets ...")
    specs = report.specs = data_specs(by_group)
    report.data_rows, found = check_datasets(specs, sample=sample, log=log)
    report.problems += found

    log("weights ...")
    report.weights = weights_needs(by_group)
    report.problems += check_weights(report.weights, weights_root, log=log)

    report.device = device_info()
    report.problems += device_problems(report.device, profile)
    classes = _num_classes(specs, report.data_rows)
    report.disk, found = disk_estimate(every, classes, results)
    report.problems += found

    report.metric_cost = metric_cost_line(profile, every)
    if not measure:
        report.measure_note = "step times not measured (--no-measure)"
    elif report.errors:
        report.measure_note = "step times not measured: fix the errors first"
    else:
        log("timing training steps ...")
        report.steps, found = measure_steps(every, classes, steps=steps, log=log)
        report.problems += found
        report.measure_note = ("measured on CUDA" if report.device.kind == "cuda" else
                               "measured on CPU at a reduced batch and scaled: CPU hours, not GPU hours")
    if report.steps:
        train = _train_images(specs, report.data_rows)
        per_run = {c.run_id: run_hours(c, train.get(c.dataset), report.steps.get(step_key(c))) for c in every}
        for g, cs in by_group.items():
            vals = [per_run[c.run_id] for c in cs]
            report.hours[g] = math.nan if any(v is None for v in vals) else sum(vals)  # type: ignore[arg-type]
        vals = list(per_run.values())
        report.hours["__total__"] = math.nan if any(v is None for v in vals) else sum(vals)  # type: ignore[arg-type]
    return report


def preflight(paper: str, profile: str, data_root: str = "data", weights_root: str | None = None,
              groups: Iterable[str] | None = None, sample: int = 4,
              log: Callable[[str], None] | None = None) -> list[Problem]:
    """The data and weights part of `run_check` (what `rightfocus launch` runs before submitting):
    every dataset the groups read (layout, counts, `sample` images decoded per split) and every
    weights file they load. Device, disk and time are left out (a login node has no GPU). Writes
    nothing."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    by_group = grid_groups(paper, profile, data_root, groups)
    _, problems = check_datasets(data_specs(by_group), sample=sample, log=log)
    return problems + check_weights(weights_needs(by_group), weights_root, log=log)
