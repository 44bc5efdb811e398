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
    print(write_grid(args.profile, args.results, args.data_root, groups=groups, gpus=args.gpus, paper=args.paper))


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

    for path in render_all(args.profile, args.results, only=args.only or None, out=args.out):
        print(path)


def _build_parser() -> argparse.ArgumentParser:
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

    p = sub.add_parser("train", help="train (or resume) one run from a YAML config")
    p.add_argument("config", help="YAML run config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--results", default="results", help="results root")
    p.set_defaults(func=_train)

    p = sub.add_parser("grid", help="list a profile's runs, write group manifests and a Make fragment")
    p.add_argument("--paper", default="mg", choices=["mg", "aim"])
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

    p = sub.add_parser("figures", help="render inventory figures and tables from results")
    p.add_argument("--profile", default="demo")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default=None, help="default figures/<profile>")
    p.add_argument("--only", action="append", default=[], metavar="ID")
    p.set_defaults(func=_figures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int | None] = args.func
    try:
        code = func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"rightfocus {args.command}: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)
