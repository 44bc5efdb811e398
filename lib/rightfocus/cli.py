"""The `rightfocus` command. Each subcommand is a thin call into the library (imports are lazy so
that `--help` is instant). Plug-in modules (``$RIGHTFOCUS_PLUGINS``, `rightfocus.registry.load_plugins`)
load before the arguments are parsed, so a paper they register is a ``--paper`` choice."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Sequence


PROFILE_HELP = "demo: synthetic data, CPU minutes; paper: the papers' datasets and schedules"
RESULTS_HELP = "results root (runs go to <results>/<profile>/runs/<run id>/)"
DATA_ROOT_HELP = ("folder holding the datasets (paper: <root>/voc2007, <root>/coco2014, ...; demo: "
                  "<root>/synthetic/...); a relative path is taken from the project root")
WEIGHTS_ROOT_HELP = "folder of the release weights files (default: $WEIGHTS_ROOT; nothing is downloaded)"


def _make_data(args: argparse.Namespace) -> None:
    from rightfocus.data import synthetic

    kinds = synthetic.KINDS if args.kind == "all" else [args.kind]
    for kind in kinds:
        out = f"{args.out}/{synthetic.canonical(kind)}" if args.kind == "all" else args.out
        path = synthetic.make(kind, out, seed=args.seed)
        print(f"{kind}: {path}")


def _gallery(args: argparse.Namespace) -> None:
    from rightfocus.data.gallery import render_gallery

    print(render_gallery(args.data, args.out))


def _train(args: argparse.Namespace) -> None:
    from rightfocus.training.runner import train_from_file

    train_from_file(args.config, overrides=args.set, results=args.results)


def _grid(args: argparse.Namespace) -> None:
    """A paper's grid (`--paper`, `rightfocus.papers.PAPERS`): list the runs, or write configs, manifests
    and the Make fragment."""
    from rightfocus.experiments.makefile import write_grid
    from rightfocus.papers import PAPERS

    module = PAPERS[args.paper].grids
    groups = args.group or list(module.GROUPS)
    if args.list:
        for g in groups:
            for c in module.group_configs(g, args.profile, args.data_root):
                print(f"{g}\t{c.run_id}")
        return
    if args.profile == "demo":  # the paper profile's `rightfocus check` covers its data; here: before writing anything
        _demo_data_exists(module, groups, args.data_root)
    print(write_grid(args.profile, args.results, args.data_root, groups=groups, gpus=args.gpus, paper=args.paper))


def _demo_data_exists(module, groups: Sequence[str], data_root: str) -> None:
    """Raise FileNotFoundError naming every missing synthetic dataset of the demo grid (so that a wrong
    DATA_ROOT never rewrites the configs)."""
    from rightfocus import project

    roots = sorted({c.data_root for g in groups for c in module.group_configs(g, "demo", data_root)})
    missing = [r for r in roots if not project.resolve(r).exists()]
    if missing:
        raise FileNotFoundError(
            f"demo data missing under --data-root {data_root!r}: {missing} (looked from the working directory and "
            f"the project root {project.project_root()}). Write it first (`make data DATA_ROOT={data_root}`, or "
            "`make demo`, which does), or leave DATA_ROOT at its default 'data'; no config was written")


def _check(args: argparse.Namespace) -> int:
    """Everything a paper grid needs (data, weights, disk, device, time); exit 1 on any error."""
    import os

    from rightfocus.check import run_check

    report = run_check(args.paper, args.profile, args.data_root,
                       args.weights_root if args.weights_root is not None else os.environ.get("WEIGHTS_ROOT") or None,
                       groups=args.group or None, results=args.results, measure=not args.no_measure,
                       sample=args.sample, steps=args.steps)
    print(report.render())
    return report.exit_code


def _protocol(args: argparse.Namespace) -> None:
    """Print one id's protocol card, or every card (`rightfocus.protocol`)."""
    from rightfocus import protocol

    if args.all == bool(args.id):
        raise ValueError("give one figure/table id (e.g. `rightfocus protocol mg.tab1`) or --all")
    if args.format == "json":
        print(protocol.cards_json([args.id] if args.id else None), end="")
    elif args.all:
        print(protocol.cards_markdown(), end="")
    else:
        print(protocol.card_markdown(args.id), end="")


def _figures(args: argparse.Namespace) -> None:
    from rightfocus.figures import render_all

    try:
        k, n = (int(v) for v in args.part.split("/"))
    except ValueError:
        raise SystemExit(f"--part {args.part!r}: write K/N, e.g. 1/2") from None
    for path in render_all(args.profile, args.results, only=args.only or None, out=args.out, part=(k, n)):
        print(path)


def _launch(args: argparse.Namespace) -> int:
    """A paper's grid through submitit (`--executor slurm|local|debug`), or `--status`. Before
    submitting: the executor's tools and `rightfocus check`'s data and weights part (a problem stops
    the launch before anything is written); `--dry-run` prints a summary and writes nothing."""
    import os
    from dataclasses import replace

    from rightfocus import launch
    from rightfocus.check import ERROR, Problem, grid_groups, preflight
    from rightfocus.papers import PAPERS

    weights_root = args.weights_root if args.weights_root is not None else os.environ.get("WEIGHTS_ROOT") or None
    by_group = grid_groups(args.paper, args.profile, args.data_root, args.group or None)
    configs = launch.grid_configs(args.paper, args.profile, args.data_root, list(by_group))
    if args.status:
        ids = [c.run_id for c in configs]
        recorded = [s.run_id for s in launch.launch_status(args.paper, args.profile, args.results)]
        print(launch.format_status(launch.launch_status(args.paper, args.profile, args.results,
                                                        ids + [r for r in recorded if r not in ids])))
        return 0
    if weights_root:  # where the jobs read the weights (not part of a run's id)
        configs = [replace(c, weights_root=weights_root) for c in configs]
    if not args.dry_run:
        launch.check_executor(args.executor)
    if args.profile == "demo":
        try:
            _demo_data_exists(PAPERS[args.paper].grids, list(by_group), args.data_root)
            problems: list[Problem] = []
        except FileNotFoundError as exc:
            problems = [Problem(ERROR, "data", str(exc), f"make data DATA_ROOT={args.data_root}")]
    else:
        problems = preflight(args.paper, args.profile, args.data_root, weights_root, list(by_group))
    errors = [p for p in problems if p.level == ERROR]
    options = launch.JobOptions(
        partition=args.partition, gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb, timeout_min=args.time, account=args.account, qos=args.qos,
        array_parallelism=args.array_parallelism, sbatch=launch.parse_sbatch(args.sbatch),
        setup=tuple(args.setup), max_requeues=args.max_requeues)
    if args.dry_run:
        planned = launch.launch(configs, args.executor, args.results, options, dry_run=True)
        print(launch.dry_run_summary(planned, by_group, args.executor, args.data_root, weights_root, args.results,
                                     problems))
        return 0
    if errors:
        print("\n".join(p.line() for p in problems), file=sys.stderr)
        print(f"rightfocus launch: {len(errors)} problem(s) with the data or weights (as `.venv/bin/rightfocus check "
              f"--paper {args.paper} --profile {args.profile}` reports them); nothing was submitted or written",
              file=sys.stderr)
        return 1
    for p in problems:
        print(p.line(), file=sys.stderr)
    launch.launch(configs, args.executor, args.results, options, simulate_preemption=args.simulate_preemption)
    print(f"status: .venv/bin/rightfocus launch --status --paper {args.paper} --profile {args.profile} "
          f"--results {args.results}")
    return 0


def _train_epilog() -> str:
    """The config fields, their meaning and defaults (from `RunConfig` and `config.FIELD_HELP`)."""
    import dataclasses

    from rightfocus.runs.config import FIELD_HELP, RunConfig

    lines = ["config fields (YAML keys, or --set KEY=VALUE; extra.NAME=VALUE sets one extra setting):"]
    for f in dataclasses.fields(RunConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        lines.append(f"  {f.name:<20} {FIELD_HELP[f.name]} (default: {default!r})")
    lines += ["", "example: rightfocus train configs/example_baseline.yaml --set epochs=2, then "
              "configs/example_guided.yaml (its init_from is the baseline's run id)"]
    return "\n".join(lines)


def _build_parser() -> argparse.ArgumentParser:
    from rightfocus.papers import PAPERS, standalone

    parser = argparse.ArgumentParser(prog="rightfocus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    _add_run_commands(sub, list(PAPERS), standalone())
    _add_launch_command(sub, standalone())
    _add_output_commands(sub)
    return parser


def _add_data_commands(sub: Any) -> None:
    """``make-data`` and ``gallery``: the synthetic datasets."""
    p = sub.add_parser("make-data", help="write a synthetic dataset in a real dataset's on-disk format")
    p.add_argument("kind", help="voc2007|coco2014|waterbirds|cub|travelingbirds|imagefolder|hardimagenet|all (voc, coco: aliases)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed of the generator (same seed: same files)")
    p.set_defaults(func=_make_data)

    p = sub.add_parser("gallery", help="draw a few samples of every synthetic dataset with boxes and masks")
    p.add_argument("--data", required=True, help="folder written by `make-data all`")
    p.add_argument("--out", required=True, help="PNG path")
    p.set_defaults(func=_gallery)


def _add_run_commands(sub: Any, papers: list[str], alone: Sequence[str]) -> None:
    """``train``, ``grid`` and ``check``: one run, a paper's grid, and the check before running it."""
    from rightfocus.papers import choices_help

    p = sub.add_parser("train", help="train (or resume) one run from a YAML config", epilog=_train_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train (or resume) one run; it goes to <results>/<profile>/runs/<run id>/.")
    p.add_argument("config", help="YAML run config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--results", default="results", help=RESULTS_HELP)
    p.set_defaults(func=_train)

    p = sub.add_parser("grid", help="list a profile's runs, write group manifests and a Make fragment")
    p.add_argument("--paper", default=papers[0], choices=papers, help=choices_help(papers))
    p.add_argument("--profile", default="demo", help=PROFILE_HELP)
    p.add_argument("--results", default="results", help=RESULTS_HELP)
    p.add_argument("--data-root", default="data", help=DATA_ROOT_HELP)
    p.add_argument("--group", action="append", default=[], help="restrict to these groups (repeatable)")
    p.add_argument("--gpus", type=int, default=0, help="round-robin CUDA_VISIBLE_DEVICES over this many GPUs")
    p.add_argument("--list", action="store_true", help="only print group and run id per run")
    p.set_defaults(func=_grid)

    p = sub.add_parser("check", help="check data, weights, disk, device and time of a paper grid before running it",
                       epilog="exit status: 0 ready (warnings allowed), 1 a problem to fix, 2 bad arguments")
    p.add_argument("--paper", default=alone[0], choices=alone, help=choices_help(alone))
    p.add_argument("--profile", default="paper", help=PROFILE_HELP)
    p.add_argument("--data-root", default="data", help=DATA_ROOT_HELP)
    p.add_argument("--weights-root", default=None, help=WEIGHTS_ROOT_HELP)
    p.add_argument("--group", action="append", default=[], help="restrict to these groups (repeatable)")
    p.add_argument("--results", default="results", help="where the grid will write (for the free-disk check)")
    p.add_argument("--no-measure", action="store_true", help="skip timing training steps")
    p.add_argument("--sample", type=int, default=16, help="images decoded per split (0: all)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per model (after one warm-up step)")
    p.set_defaults(func=_check)


def _add_launch_command(sub: Any, alone: Sequence[str]) -> None:
    """``launch``: a paper grid through submitit."""
    from rightfocus.papers import choices_help

    p = sub.add_parser("launch", help="run a paper grid through submitit (SLURM, local, debug); --status")
    p.add_argument("--paper", default=alone[0], choices=alone, help=choices_help(alone))
    p.add_argument("--profile", default="demo", help=PROFILE_HELP)
    p.add_argument("--group", action="append", default=[], help="restrict to these groups (repeatable)")
    p.add_argument("--executor", default="slurm", choices=["slurm", "local", "debug"],
                   help="slurm: one job per run (arrays, dependencies, requeue); local: processes on this "
                        "machine; debug: in this process, one run after the other")
    p.add_argument("--results", default="results", help=RESULTS_HELP)
    p.add_argument("--data-root", default="data", help=DATA_ROOT_HELP)
    p.add_argument("--weights-root", default=None, help=WEIGHTS_ROOT_HELP + "; written into every run's config")
    p.add_argument("--status", action="store_true", help="only show each run's state, job id and log")
    p.add_argument("--dry-run", action="store_true",
                   help="write nothing; print the runs per dependency wave and group, where data and weights "
                        "are read, and what the launch's preflight finds")
    p.add_argument("--simulate-preemption", action="store_true",
                   help="check the requeue set-up: each job signals itself after its run's first checkpoint")
    s = p.add_argument_group("job resources (SLURM; --time and --gpus-per-node also local)")
    s.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    s.add_argument("--gpus-per-node", type=int, default=1, help="GPUs per job")
    s.add_argument("--cpus-per-task", type=int, default=8, help="CPU cores per job (data loading)")
    s.add_argument("--mem-gb", type=float, default=None, help="memory per job in GB (default: the cluster's)")
    s.add_argument("--time", type=int, default=24 * 60, help="minutes per job; longer runs are requeued and resume")
    s.add_argument("--account", help="SLURM account to charge")
    s.add_argument("--qos", help="SLURM quality of service")
    s.add_argument("--array-parallelism", type=int, default=None,
                   help="array tasks at once (default 64); local: jobs at once (default: one per visible GPU)")
    s.add_argument("--sbatch", action="append", default=[], metavar="KEY[=VALUE]",
                   help="extra #SBATCH flag, e.g. --sbatch constraint=h200 (repeatable)")
    s.add_argument("--setup", action="append", default=[], metavar="CMD",
                   help="shell line run before each job, e.g. 'source .venv/bin/activate' (repeatable)")
    s.add_argument("--max-requeues", type=int, default=30, help="time-limit requeues per run (preemptions are free)")
    p.set_defaults(func=_launch)


def _add_output_commands(sub: Any) -> None:
    """``figures`` and ``protocol``: what the results render to and how the paper profile trains them."""
    from rightfocus.experiments.grids import PROFILES

    p = sub.add_parser("figures", help="render inventory figures and tables from results")
    p.add_argument("--profile", default="demo", choices=PROFILES, help="results profile to render")
    p.add_argument("--results", default="results", help=RESULTS_HELP)
    p.add_argument("--out", default=None, help="output folder (default figures/<profile>)")
    p.add_argument("--only", action="append", default=[], metavar="ID",
                   help="render only this inventory id, or a glob such as 'mg.*' (repeatable)")
    p.add_argument("--part", default="1/1", metavar="K/N",
                   help="render the K-th of N interleaved slices of the ids (N processes at once)")
    p.set_defaults(func=_figures)

    p = sub.add_parser("protocol", help="print the paper-profile protocol card of a figure/table id (or --all)")
    p.add_argument("id", nargs="?", default=None, help="an inventory id, e.g. mg.tab1")
    p.add_argument("--all", action="store_true", help="every id (markdown: one table, as docs/protocol.md)")
    p.add_argument("--format", default="md", choices=("md", "json"),
                   help="md: readable markdown (default); json: machine-readable records")
    p.set_defaults(func=_protocol)


def main(argv: Sequence[str] | None = None) -> int:
    from rightfocus.registry import load_plugins

    load_plugins()
    args = _build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int | None] = args.func
    try:
        code = func(args)
    except KeyboardInterrupt as exc:  # Ctrl-C: no traceback (a run says where it resumes)
        print(f"rightfocus {args.command}: {exc or 'interrupted'}", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, KeyError, FloatingPointError) as exc:
        print(f"rightfocus {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        import errno

        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"rightfocus {args.command}: {exc}", file=sys.stderr)
        return 1
    return int(code or 0)
