"""The pretrained weights files a grid names, checked under WEIGHTS_ROOT: found, readable
(``torch.load(weights_only=True)``) and fitting the model that loads them.

MG: the file in ``RunConfig.extra["weights"]`` of every baseline and of every guided run that starts
from the initialisation (Waterbirds); the other guided runs start from a baseline;
AIM: the torchvision ImageNet release of the run's backbone (`experiments.aim_grids.PRETRAINED_FILES`, or
``extra["weights"]``) unless ``extra["pretrained"]`` is off. When `rightfocus.models.release` provides
``check_weights_file(path, kind, arch) -> list[str]`` it decides; otherwise the file is loaded into
the model the run builds (`rightfocus.models.build_model` / AIM's `PlainBackbone`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rightfocus.check.problems import ERROR, Problem
from rightfocus.runs.config import FROM_INIT, RunConfig


@dataclass
class WeightsNeed:
    """One file the grid needs: which model family/arch loads it, how many runs, which groups."""

    file: str
    kind: str  # model kind that loads it ("vanilla" for AIM's torchvision backbones)
    arch: str
    runs: int = 0
    groups: list[str] = field(default_factory=list)
    status: str = "-"
    path: str = "-"
    label: str = ""  # how the table names the model that loads it

    def __post_init__(self) -> None:
        self.label = self.label or f"{self.kind} {self.arch}"


def _aim_file(c: RunConfig) -> str | None:
    from rightfocus.experiments.aim_grids import PRETRAINED_FILES
    from rightfocus.aim_options import AimOptions

    opts = AimOptions.from_config(c)
    if not opts.pretrained:
        return None
    return opts.weights if opts.weights else PRETRAINED_FILES.get(c.arch)


def weights_needs(configs_by_group: dict[str, list[RunConfig]]) -> list[WeightsNeed]:
    """Every weights file the runs of the groups load, once each."""
    needs: dict[tuple[str, str, str], WeightsNeed] = {}
    seen: set[tuple[str, str]] = set()
    for group, configs in configs_by_group.items():
        for c in configs:
            if c.paper == "aim":  # the run's training loop
                file, kind = _aim_file(c), "vanilla"
                if file is None and c.extra.get("pretrained", True) and c.profile == "paper":
                    file = f"<no ImageNet release known for {c.arch}>"
            else:
                starts_there = c.is_baseline or c.init_from == FROM_INIT  # the others load a baseline
                file, kind = (c.extra.get("weights") if starts_there else None), c.model_kind
            if not file:
                continue
            label = f"{c.arch} backbone (AIM and its baseline)" if c.paper == "aim" else ""
            need = needs.setdefault((file, kind, c.arch), WeightsNeed(file, kind, c.arch, label=label))
            if (c.run_id, file) not in seen:
                seen.add((c.run_id, file))
                need.runs += 1
            if group not in need.groups:
                need.groups.append(group)
    return list(needs.values())


def _release_checker() -> Callable[[Path, str, str], list[str]] | None:
    """`rightfocus.models.release.check_weights_file` when that module exists."""
    try:
        from rightfocus.models.release import check_weights_file  # type: ignore[attr-defined]
    except ImportError:
        return None
    return check_weights_file


def _where_to_get(need: WeightsNeed) -> str:
    """Where the file comes from, from `rightfocus.models.release.RELEASES` when it knows it (by
    name, else the releases of the same kind and arch, to be saved under the grid's name)."""
    try:
        from rightfocus.models.release import RELEASES  # type: ignore[attr-defined]
    except ImportError:
        return ""
    if need.file in RELEASES:
        r = RELEASES[need.file]
        return f" (download: {r.project}, {r.url})"
    same = [(name, r) for name, r in RELEASES.items() if (r.kind, r.arch) == (need.kind, need.arch)]
    if not same:
        return ""
    names = "; ".join(f"{name} ({r.project}, {r.url})" for name, r in same)
    return f" (releases of {need.kind} {need.arch}: {names}; save the one you use as {need.file!r})"


def _fit_problems(path: Path, kind: str, arch: str, num_classes: int) -> list[str]:
    """Read the file and load it into the model a run builds; the messages of what failed."""
    import torch  # noqa: F401  (torch.load's errors)

    from rightfocus.models.backbones import pretrained_files
    from rightfocus.models.weights import read_state_dict

    try:
        read_state_dict(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read is reported, with its message
        return [f"cannot be read with torch.load(weights_only=True) (truncated or corrupt file?): "
                f"{type(exc).__name__}: {str(exc)[:200]}"]
    try:
        if kind == "vanilla" and arch in pretrained_files("aim"):
            from rightfocus.training.aim_loop import PlainBackbone

            PlainBackbone(arch, num_classes, str(path))  # what AIM runs (and their baselines) load into
        else:
            from rightfocus.models import build_model

            build_model(kind, arch, num_classes, weights=str(path))
    except Exception as exc:  # noqa: BLE001
        return [f"does not fit {kind} {arch}: {str(exc)[:300]}"]
    return []


def check_weights(needs: list[WeightsNeed], weights_root: str | None, log=print) -> list[Problem]:
    """Found / readable / fits, for every needed file; fills each need's ``status`` and ``path``."""
    problems: list[Problem] = []
    if not needs:
        return problems
    if not weights_root:
        names = ", ".join(sorted({n.file for n in needs}))
        for n in needs:
            n.status = "no WEIGHTS_ROOT"
        return [Problem(ERROR, "weights", f"WEIGHTS_ROOT is not set; the grid loads {len(needs)} weights file(s): {names}",
                        "pass --weights-root DIR (make: WEIGHTS_ROOT=DIR), DIR holding those release files "
                        "(nothing is downloaded; see README, paper profile)")]
    root = Path(weights_root)
    if not root.is_dir():
        for n in needs:
            n.status = "missing"
        return [Problem(ERROR, "weights", f"WEIGHTS_ROOT {root} is not a folder",
                        f"create it and put the release files there: {', '.join(sorted({n.file for n in needs}))}")]
    checker = _release_checker()
    for need in needs:
        path = Path(need.file) if Path(need.file).is_absolute() else root / need.file
        need.path = str(path)
        where = f"weights {need.file}"
        used = f"{need.runs} run(s) of {', '.join(need.groups)}; loaded by {need.label}"
        if not path.is_file():
            need.status = "missing"
            problems.append(Problem(ERROR, where, f"not found at {path} (needed by {used})",
                                    f"put the release file {need.file!r} into {root}{_where_to_get(need)}"))
            continue
        log(f"  loading {path.name} into {need.kind} {need.arch} ...")
        found: list[str] | None = None
        if checker is not None:
            try:
                found = list(checker(path, need.kind, need.arch))
            except Exception:  # noqa: BLE001 - an unknown (kind, arch) for the checker: load it ourselves
                found = None
        if found is None:
            found = _fit_problems(path, need.kind, need.arch, num_classes=10)
        unreadable = ("cannot be read", "eof", "zip archive", "truncat", "pickle", "failed reading")
        need.status = ("ok" if not found else
                       "unreadable" if any(w in found[0].lower() for w in unreadable) else "does not fit")
        problems += [Problem(ERROR, where, f"{path}: {msg}",
                             f"re-download the release file {need.file!r} (a partial download is truncated)"
                             f" into {root}") for msg in found]
    return problems


def describe(needs: list[WeightsNeed]) -> list[dict[str, Any]]:
    """Rows of the weights table."""
    return [{"file": n.file, "model": n.label, "runs": n.runs, "status": n.status} for n in needs]
