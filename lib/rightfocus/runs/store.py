"""The results store: where runs live and how they are read and written.

Layout (the results contract shared with the figure renderers)::

    <results>/<profile>/runs/<run_id>/config.yaml     every RunConfig field
                                     /metrics.jsonl   one row per (epoch, split, tap, method)
                                     /ckpt/epoch_<e>.pt kept for selection; ckpt/latest.pt resume state
                                                      (deleted once done; see training.engine)
                                     /done            JSON summary, written last
                                     /notebook.txt    pointer to the executed notebook (optional)
    <results>/<profile>/groups/<group>.json           {"group", "profile", "runs": [run_id, ...]}

Every write goes to a temporary file in the same folder and is renamed into place, so a reader (or a
killed run) never sees half a file; a full disk leaves the previous file intact and says so. A run
folder counts as a run once ``done`` is written: `list_runs` and `load_metrics` skip unfinished (or
failed) runs unless asked for them. Every ``.pt`` file of ours (checkpoints, mask and example blobs) is
read by `load_torch`: ``torch.load(weights_only=True)``, tensors and plain data only; a file that needs
pickle is refused, never executed.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import pandas as pd

from rightfocus.runs.config import RunConfig, dump_config

#: columns every metrics row carries (others may be added)
METRIC_COLUMNS = (
    "epoch", "split", "tap", "method", "f1", "map", "epg", "iou", "iou_threshold", "onobj_epg",
    "accuracy", "group_acc", "worst_group_acc", "epoch_time_s", "checkpoint",
)


# ---- paths ------------------------------------------------------------------------------------
def profile_dir(results: str | Path, profile: str) -> Path:
    return Path(results) / profile


def run_dir(results: str | Path, profile: str, run_id: str) -> Path:
    """Folder of one run."""
    return profile_dir(results, profile) / "runs" / run_id


def group_path(results: str | Path, profile: str, group: str) -> Path:
    return profile_dir(results, profile) / "groups" / f"{group}.json"


# ---- atomic writes ----------------------------------------------------------------------------
#: fault-injection hook of the kill tests (tests/test_faults.py): "<substring>@<n>[:<seconds>]" pauses
#: the process at the n-th fault point whose name contains <substring> (a write between its temporary
#: file and the rename: the target path; a batch: "<pass> batch", see `training.engine.batches`),
#: printing "fault-pause <name>" to stderr, for <seconds> (default 300) or until SIGUSR1, so that a test
#: can kill it there (or let it go on)
FAULT_ENV = "RIGHTFOCUS_FAULT_PAUSE"
_fault_counts: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Pause here when `FAULT_ENV` selects this point (tests only; a no-op when the variable is unset)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    what, _, rest = spec.partition("@")
    nth, _, seconds = rest.partition(":")
    if what not in name:
        return
    _fault_counts[what] = _fault_counts.get(what, 0) + 1
    if _fault_counts[what] == int(nth or 1):
        print(f"fault-pause {name}", file=sys.stderr, flush=True)
        _pause(float(seconds or 300))


class _Wake(Exception):
    pass


def _raise_wake(signum: int, frame: Any) -> None:
    raise _Wake


def _sleep(seconds: float) -> None:
    """Sleep in short steps: a signal that arrives just before a step's system call starts (a window
    one long ``time.sleep`` can lose for its whole length) is handled at the next step."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


def _pause(seconds: float) -> None:
    """Sleep `seconds`, or until SIGUSR1 (in the main thread); SIGINT interrupts it as usual."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        _sleep(seconds)
        return
    old = signal.signal(signal.SIGUSR1, _raise_wake)
    try:
        _sleep(seconds)
    except _Wake:
        pass
    finally:
        signal.signal(signal.SIGUSR1, old)


class DiskFullError(OSError):
    """A write ran out of space (ENOSPC/EDQUOT); the previous file at the path is intact."""


def _atomic(path: Path, write: Any, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        fault_point(str(path))
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = "the previous file is intact" if path.exists() else "nothing was written there"
            raise DiskFullError(exc.errno, f"disk full while writing {path} ({kept}); free space on the disk "
                                f"holding {path.parent} and re-run the same command (a run resumes)") from exc
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` via a temporary file and rename."""
    _atomic(Path(path), lambda fh: fh.write(text), "w")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """`torch.save` via a temporary file and rename."""
    import torch

    _atomic(Path(path), lambda fh: torch.save(obj, fh), "wb")


def remove_partial_writes(rdir: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left in a run folder (``.<name>.*.tmp``); call it
    only while holding the run's lock. Returns what was removed."""
    gone = [p for p in Path(rdir).rglob(".*.tmp") if p.is_file()]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def write_config(rdir: Path, config: RunConfig) -> None:
    atomic_write_text(rdir / "config.yaml", dump_config(config))


def write_metrics(rdir: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl from the full row history (atomic; small files)."""
    text = "".join(json.dumps(_row(r), sort_keys=False) + "\n" for r in rows)
    atomic_write_text(rdir / "metrics.jsonl", text)


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in METRIC_COLUMNS}
    out.update({k: v for k, v in row.items() if k not in out})
    return out


def write_done(rdir: Path, summary: dict[str, Any]) -> None:
    atomic_write_text(rdir / "done", json.dumps(summary, indent=1, sort_keys=True))


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Exclusive lock (``fcntl.flock`` on ``<path>.lock``) around a read-modify-write of a shared file."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update_json(path: str | Path, update: dict[str, Any]) -> None:
    """Merge `update` into the JSON object at `path` (created if missing) under `file_lock`, written
    atomically: concurrent writers (``make -j``) never lose each other's keys or leave half a file."""
    path = Path(path)
    with file_lock(path):
        previous = _json(path, "delete it; it is rewritten on the next render") if path.exists() else {}
        atomic_write_text(path, json.dumps({**previous, **update}, indent=1, sort_keys=True))


def write_group(results: str | Path, profile: str, group: str, run_ids: Iterable[str]) -> Path:
    """Write the manifest of an experiment group (runs shared by groups are listed, not copied)."""
    path = group_path(results, profile, group)
    runs = list(dict.fromkeys(run_ids))
    atomic_write_text(path, json.dumps({"group": group, "profile": profile, "runs": runs}, indent=1))
    return path


# ---- reading ----------------------------------------------------------------------------------
class CheckpointError(ValueError):
    """A ``.pt`` file of ours that cannot be read: truncated/corrupt, or needing pickle (refused)."""


class NeedsPickleError(CheckpointError):
    """The file holds objects other than tensors and plain data: loading it would run pickle code."""


def load_torch(path: str | Path, device: Any = "cpu") -> Any:
    """The one reader of our ``.pt`` files (checkpoints, ``latest.pt``, mask and example blobs):
    ``torch.load(weights_only=True)``. A file that needs pickle raises `NeedsPickleError`, a truncated
    or corrupt one `CheckpointError`; both name the file and the fix."""
    import pickle

    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} missing")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):
            raise NeedsPickleError(
                f"{path}: refused: the file holds objects that need pickle to load (older checkpoint "
                f"format, or not written by rightfocus), and loading it could run arbitrary code; delete it "
                f"and re-train the run (or regenerate the file, e.g. `make demo`)") from None
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: "
                              f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}); "
                              f"delete it and re-train the run") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {first}); "
                              f"delete it and re-train the run") from None


def _json(path: Path, fix: str) -> Any:
    """A JSON file of the store; a damaged one names the file, line and column, and `fix`."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}); {fix}") from None


def is_done(rdir: str | Path) -> bool:
    return (Path(rdir) / "done").exists()


def read_done(rdir: str | Path) -> dict[str, Any]:
    path = Path(rdir) / "done"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: the run has not finished (train it, e.g. `make mg`)")
    return _json(path, "the run's completion marker is damaged: delete it and re-run the same command "
                       "(the run resumes or re-tests)")


def list_runs(results: str | Path, profile: str, group: str | None = None, *, unfinished: bool = False
              ) -> list[str]:
    """Run ids of a group (from its manifest) or every finished run folder of the profile (sorted);
    `unfinished`: also folders without ``done`` (runs in progress, interrupted or failed)."""
    if group is not None:
        path = group_path(results, profile, group)
        if not path.exists():
            raise FileNotFoundError(
                f"no manifest {path}; write it with `.venv/bin/rightfocus grid --profile {profile}` or train the grid"
            )
        data = _json(path, f"rewrite it with `.venv/bin/rightfocus grid --profile {profile}`")
        if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
            raise ValueError(f"{path}: no 'runs' list; rewrite it with `.venv/bin/rightfocus grid --profile {profile}`")
        return list(data["runs"])
    runs = profile_dir(results, profile) / "runs"
    found = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []
    return [p.name for p in found if unfinished or is_done(p)]


def load_config(rdir: str | Path) -> RunConfig:
    """The RunConfig stored in a run folder."""
    import yaml

    path = Path(rdir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: not a run folder")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); the run folder is "
                         f"damaged: delete {path.parent} and train the run again") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a run config (a YAML mapping of RunConfig fields); delete {path.parent} "
                         f"and train the run again")
    return RunConfig.from_dict(data)


def read_metrics(rdir: str | Path) -> list[dict[str, Any]]:
    path = Path(rdir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {n}: not a JSON row ({exc.msg}); the file is damaged: delete "
                                 f"{path.parent / 'done'} (if any) and {path.parent / 'ckpt'} and re-run the "
                                 f"same command to train the run again") from None
    return rows


def load_metrics(results: str | Path, profile: str, group: str | None = None, *, unfinished: bool = False
                 ) -> pd.DataFrame:
    """One row per metrics.jsonl line of every run (of `group`), joined with the run's config fields.

    Added columns: ``run_id``, ``is_baseline``, ``done``, ``on_front`` (epoch on the run's own val
    Pareto front), ``selected`` (the run's selected checkpoint: best val F1/accuracy for baselines,
    the representative model for guided runs). ``extra`` is flattened into ``extra.<key>`` columns.
    """
    frames = []
    for rid in list_runs(results, profile, group, unfinished=unfinished):
        rdir = run_dir(results, profile, rid)
        rows = read_metrics(rdir)
        if not rows or not (rdir / "config.yaml").exists():
            continue
        cfg = load_config(rdir).to_dict()
        extra = cfg.pop("extra") or {}
        summary = read_done(rdir) if is_done(rdir) else {}
        front = set(summary.get("front_epochs", []))
        df = pd.DataFrame([_row(r) for r in rows])
        # config columns must not clash with metric columns (tap/method are both: keep the metric's)
        for k, v in cfg.items():
            col = k if k not in df.columns else f"config_{k}"
            df[col] = [v] * len(df)
        for k, v in extra.items():
            df[f"extra.{k}"] = [v] * len(df)
        df["run_id"] = rid
        df["is_baseline"] = load_config(rdir).is_baseline
        df["done"] = bool(summary)
        df["on_front"] = df["epoch"].isin(front)
        df["selected"] = df["epoch"] == summary.get("selected_epoch", -1)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[*METRIC_COLUMNS, "run_id", "is_baseline"])
    return pd.concat(frames, ignore_index=True)


def checkpoint_path(rdir: str | Path, which: str | int = "selected") -> Path:
    """Path of a kept checkpoint: "latest", "selected" (from `done`), or an epoch number."""
    rdir = Path(rdir)
    if which == "latest":
        path = rdir / "ckpt" / "latest.pt"
    else:
        epoch = read_done(rdir)["selected_epoch"] if which == "selected" else int(which)
        path = rdir / "ckpt" / f"epoch_{epoch}.pt"
    if not path.exists():
        kept = sorted(p.name for p in (rdir / "ckpt").glob("*.pt")) if (rdir / "ckpt").exists() else []
        raise FileNotFoundError(f"checkpoint {path} not kept; this run keeps {kept}")
    return path


def load_checkpoint(rdir: str | Path, which: str | int = "selected", device: str = "cpu") -> tuple[Any, RunConfig]:
    """Rebuild the model of a run (either paper) and load a kept checkpoint: returns (model in eval
    mode, config). The checkpoint's ``model_options`` rebuild it (AIM's plain baselines:
    `models.aim_plain.PlainBackbone`); pretrained weights are never re-read, the checkpoint has them."""
    from rightfocus.models import build_model

    config = load_config(rdir)
    state = load_torch(checkpoint_path(rdir, which), device)
    options = state.get("model_options", {})
    if config.paper == "aim" and config.model_kind != "aim":
        from rightfocus.models.aim_plain import PlainBackbone

        model = PlainBackbone(config.arch, state["num_classes"], None, **options)
    else:
        model = build_model(config.model_kind, config.arch, state["num_classes"], **options)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config
