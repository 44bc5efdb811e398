"""The `rightfocus` command. Each subcommand is a thin call into the library (imports are lazy so
that `--help` is instant)."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence


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
    """Either paper's grids (`--paper mg|aim`): list the runs, or write configs, manifests and the
    Make fragment."""
    from rightfocus.experiments.makefile import PAPERS, write_grid

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


def _figures(args: argparse.Namespace) -> None:
    from rightfocus.figures import render_all

    try:
        k, n = (int(v) for v in args.part.split("/"))
    except ValueError:
        raise SystemExit(f"--part {args.part!r}: write K/N, e.g. 1/2") from None
    for path in render_all(args.profile, args.results, only=args.only or None, out=args.out, part=(k, n)):
        print(path)


def _launch(args: argparse.Namespace) -> None:
    """Either paper's grid through submitit (`--executor slurm|local|debug`), or `--status`."""
    from rightfocus import launch

    configs = launch.grid_configs(args.paper, args.profile, args.data_root, args.group or None)
    if args.status:
        ids = [c.run_id for c in configs]
        recorded = [s.run_id for s in launch.launch_status(args.paper, args.profile, args.results)]
        print(launch.format_status(launch.launch_status(args.paper, args.profile, args.results,
                                                        ids + [r for r in recorded if r not in ids])))
        return
    options = launch.JobOptions(
        partition=args.partition, gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb, timeout_min=args.time, account=args.account, qos=args.qos,
        array_parallelism=args.array_parallelism, sbatch=launch.parse_sbatch(args.sbatch),
        setup=tuple(args.setup), max_requeues=args.max_requeues)
    launch.launch(configs, args.executor, args.results, options, dry_run=args.dry_run,
                  simulate_preemption=args.simulate_preemption)
    if not args.dry_run:
        print(f"status: rightfocus launch --status --paper {args.paper} --profile {args.profile} "
              f"--results {args.results}")


def _train_epilog() -> str:
    """The config fields, their meaning and defaults (from `RunConfig` and `config.FIELD_HELP`)."""
    import dataclasses

    from rightfocus.experiments.config import FIELD_HELP, RunConfig

    lines = ["config fields (YAML keys, or --set KEY=VALUE; extra.NAME=VALUE sets one extra setting):"]
    for f in dataclasses.fields(RunConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        lines.append(f"  {f.name:<20} {FIELD_HELP[f.name]} (default: {default!r})")
    lines += ["", "example: rightfocus train configs/example_baseline.yaml --set epochs=2, then "
              "configs/example_guided.yaml (its init_from is the baseline's run id)"]
    return "\n".join(lines)


def _build_parser() -> argparse.ArgumentParser:
    from rightfocus.experiments.grids import PROFILES

    parser = argparse.ArgumentParser(prog="rightfocus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-data", help="write a synthetic dataset in a real dataset's on-disk format")
    p.add_argument("kind", help="voc2007|coco2014|waterbirds|cub|travelingbirds|imagefolder|hardimagenet|all (voc, coco: aliases)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_make_data)

    p = sub.add_parser("gallery", help="draw a few samples of every synthetic dataset with boxes and masks")
    p.add_argument("--data", required=True, help="folder written by `make-data all`")
    p.add_argument("--out", required=True, help="PNG path")
    p.set_defaults(func=_gallery)

    p = sub.add_parser("train", help="train (or resume) one run from a YAML config", epilog=_train_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train (or resume) one run; it goes to <results>/<profile>/runs/<run id>/.")
    p.add_argument("config", help="YAML run config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--results", default="results", help="results root")
    p.set_defaults(func=_train)

    p = sub.add_parser("grid", help="list a profile's runs, write group manifests and a Make fragment")
    p.add_argument("--paper", default="mg", choices=["mg", "aim", "ext"])
    p.add_argument("--profile", default="demo", help="demo | paper")
    p.add_argument("--results", default="results")
    p.add_argument("--data-root", default="data")
    p.add_argument("--group", action="append", default=[], help="restrict to these groups (repeatable)")
    p.add_argument("--gpus", type=int, default=0, help="round-robin CUDA_VISIBLE_DEVICES over this many GPUs")
    p.add_argument("--list", action="store_true", help="only print group and run id per run")
    p.set_defaults(func=_grid)

    p = sub.add_parser("check", help="check data, weights, disk, device and time of a paper grid before running it",
                       epilog="exit status: 0 ready (warnings allowed), 1 a problem to fix, 2 bad arguments")
    p.add_argument("--paper", default="mg", choices=["mg", "aim"])
    p.add_argument("--profile", default="paper", help="paper | demo")
    p.add_argument("--data-root", default="data")
    p.add_argument("--weights-root", default=None, help="folder of the release weights files (default: $WEIGHTS_ROOT)")
    p.add_argument("--group", action="append", default=[], help="restrict to these groups (repeatable)")
    p.add_argument("--results", default="results", help="where the grid will write (for the free-disk check)")
    p.add_argument("--no-measure", action="store_true", help="skip timing training steps")
    p.add_argument("--sample", type=int, default=16, help="images decoded per split (0: all)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per model (after one warm-up step)")
    p.set_defaults(func=_check)

    p = sub.add_parser("launch", help="run a paper grid through submitit (SLURM, local, debug); --status")
    p.add_argument("--paper", default="mg", choices=["mg", "aim"])
    p.add_argument("--profile", default="demo", help="demo | paper")
    p.add_argument("--group", action="append", default=[], help="restrict to these groups (repeatable)")
    p.add_argument("--executor", default="slurm", choices=["slurm", "local", "debug"])
    p.add_argument("--results", default="results")
    p.add_argument("--data-root", default="data")
    p.add_argument("--status", action="store_true", help="only show each run's state, job id and log")
    p.add_argument("--dry-run", action="store_true", help="only print the runs to submit, in dependency waves")
    p.add_argument("--simulate-preemption", action="store_true",
                   help="check the requeue set-up: each job signals itself after its run's first checkpoint")
    s = p.add_argument_group("job resources (SLURM; --time and --gpus-per-node also local)")
    s.add_argument("--partition")
    s.add_argument("--gpus-per-node", type=int, default=1)
    s.add_argument("--cpus-per-task", type=int, default=8)
    s.add_argument("--mem-gb", type=float, default=None)
    s.add_argument("--time", type=int, default=24 * 60, help="minutes per job; longer runs are requeued and resume")
    s.add_argument("--account")
    s.add_argument("--qos")
    s.add_argument("--array-parallelism", type=int, default=None,
                   help="array tasks at once (default 64); local: jobs at once (default: one per visible GPU)")
    s.add_argument("--sbatch", action="append", default=[], metavar="KEY[=VALUE]",
                   help="extra #SBATCH flag, e.g. --sbatch constraint=h200 (repeatable)")
    s.add_argument("--setup", action="append", default=[], metavar="CMD",
                   help="shell line run before each job, e.g. 'source .venv/bin/activate' (repeatable)")
    s.add_argument("--max-requeues", type=int, default=30, help="time-limit requeues per run (preemptions are free)")
    p.set_defaults(func=_launch)

    p = sub.add_parser("figures", help="render inventory figures and tables from results")
    p.add_argument("--profile", default="demo", choices=PROFILES, help="results profile to render")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default=None, help="default figures/<profile>")
    p.add_argument("--only", action="append", default=[], metavar="ID")
    p.add_argument("--part", default="1/1", metavar="K/N",
                   help="render the K-th of N interleaved slices of the ids (N processes at once)")
    p.set_defaults(func=_figures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
