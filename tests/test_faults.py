"""Nothing lost, nothing executed, for both papers on tiny runs:

- checkpoints hold tensors and plain data only: every .pt file of a run loads with
  ``torch.load(weights_only=True)``; a file that needs pickle is refused (and its code never runs);
- a real SIGKILL of `rightfocus train` at named points (mid-epoch, during a checkpoint write, during
  validation, in the test phase, while writing ``done``) then the same command again ends with exactly
  the files, metrics, checkpoints and blobs of an uninterrupted run;
- a truncated/corrupt ``latest.pt`` resumes from ``latest.prev.pt``; with neither readable the error
  names the files to delete; a full disk (simulated) leaves the previous files intact;
- a NaN/Inf loss stops the run naming run, epoch and batch, the last good checkpoint kept;
- Ctrl-C: no traceback, the message says from which epoch the same command resumes;
- two processes never train the same run twice; concurrent updates of a shared JSON file are never lost.

The slowest kill points of each paper are behind ``-m slow``."""

from __future__ import annotations

import errno
import json
import multiprocessing
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from fault_runs import aim_config, env, kill_at, mg_config, outcome, train_cmd, write_config
from rightfocus.runs import store
from rightfocus.training import aim_loop, engine
from rightfocus.training.runner import StopRequested, task_for, train_run

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    from rightfocus.data.synthetic import make

    return make("voc2007", tmp_path_factory.mktemp("voc"), seed=0, n_train=12, n_val=6, n_test=6,
                min_size=24, max_size=28)


@pytest.fixture(scope="module")
def cub(tmp_path_factory) -> Path:
    from rightfocus.data import synthetic

    return synthetic.make("cub", tmp_path_factory.mktemp("cub") / "cub", seed=0, per_class=6, num_classes=3)


@pytest.fixture(scope="module")
def mg_ref(voc, tmp_path_factory):
    """The uninterrupted MG run (in this process, one thread) and its outcome."""
    cfg = mg_config(voc)
    rdir = train_run(cfg, tmp_path_factory.mktemp("mg_ref"), progress=False)
    return cfg, outcome(rdir)


@pytest.fixture(scope="module")
def aim_ref(cub, tmp_path_factory):
    cfg = aim_config(cub)
    rdir = train_run(cfg, tmp_path_factory.mktemp("aim_ref"), progress=False)
    return cfg, outcome(rdir)


def _rdir(results: Path, cfg) -> Path:
    return store.run_dir(results, cfg.profile, cfg.run_id)


# ----------------------------------------------------------------------------- no pickle
class _Evil:
    """Unpickling it would create `path` (the code a shared checkpoint could run)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_every_file_of_a_run_loads_without_pickle(mg_ref, voc, tmp_path):
    cfg, out = mg_ref
    with pytest.raises(StopRequested):
        train_run(cfg, tmp_path, stop_after_epochs=2, progress=False)
    ck = _rdir(tmp_path, cfg) / "ckpt"
    for path in ck.glob("*.pt"):  # latest.pt (optimiser, every RNG state, history), prev, epochs
        state = torch.load(path, weights_only=True)
        assert isinstance(state["model"], dict)
    latest = torch.load(ck / "latest.pt", weights_only=True)
    assert latest["epoch"] == 2 and torch.load(ck / "latest.prev.pt", weights_only=True)["epoch"] == 1
    assert isinstance(latest["rng"]["numpy"]["key"], torch.Tensor)
    assert out["blobs"], "outcome() read every .pt of the finished run through store.load_torch"


def test_aim_blobs_load_without_pickle(aim_ref):
    _, out = aim_ref
    names = set(out["blobs"])
    assert {"examples.pt", "masks/images.pt", "masks/epoch_1.pt"} <= names, names


@pytest.mark.parametrize("kind", ["evil", "numpy"])
def test_a_checkpoint_that_needs_pickle_is_refused(mg_ref, tmp_path, kind):
    import numpy as np

    cfg, _ = mg_ref
    rdir = train_run(cfg, tmp_path, progress=False)
    sel = store.checkpoint_path(rdir, "selected")
    marker = tmp_path / "pwned"
    payload = _Evil(marker) if kind == "evil" else np.random.get_state()  # numpy's RNG state (its arrays need pickle)
    state = store.load_torch(sel)
    torch.save({**state, "rng": payload}, sel)
    with pytest.raises(store.NeedsPickleError, match=re.escape(str(sel)) + r".*refused.*re-train"):
        store.load_checkpoint(rdir)
    assert not marker.exists(), "the pickle payload ran"


def test_an_old_format_latest_is_refused_and_named(mg_ref, tmp_path):
    import numpy as np

    cfg, out = mg_ref
    with pytest.raises(StopRequested):
        train_run(cfg, tmp_path, stop_after_epochs=1, progress=False)
    latest = _rdir(tmp_path, cfg) / "ckpt" / "latest.pt"
    state = store.load_torch(latest)
    state["rng"]["numpy"] = np.random.get_state()
    torch.save(state, latest)
    with pytest.raises(store.CheckpointError, match=rf"need pickle.*Delete {re.escape(str(latest))} to restart"):
        train_run(cfg, tmp_path, progress=False)
    latest.unlink()  # as the message says
    assert outcome(train_run(cfg, tmp_path, progress=False)) == out


# ----------------------------------------------------------------------------- corrupt latest.pt
@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_latest_resumes_from_the_previous_epoch(mg_ref, tmp_path, capsys, damage):
    cfg, out = mg_ref
    with pytest.raises(StopRequested):
        train_run(cfg, tmp_path, stop_after_epochs=2, progress=False)
    latest = _rdir(tmp_path, cfg) / "ckpt" / "latest.pt"
    data = latest.read_bytes()
    latest.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00garbage" * 50, "empty": b""}[damage])
    capsys.readouterr()
    rdir = train_run(cfg, tmp_path, progress=False)
    said = capsys.readouterr().out
    assert f"{latest}: not a readable checkpoint" in said and "resuming from latest.prev.pt instead (deleting latest.pt)" in said
    assert f"resuming {cfg.run_id} from epoch 2 (epochs 1-1 restored from ckpt/latest.prev.pt)" in said
    assert outcome(rdir) == out


def test_no_readable_resume_state_names_what_to_delete(mg_ref, tmp_path):
    cfg, out = mg_ref
    with pytest.raises(StopRequested):
        train_run(cfg, tmp_path, stop_after_epochs=2, progress=False)
    ck = _rdir(tmp_path, cfg) / "ckpt"
    for name in ("latest.pt", "latest.prev.pt"):
        (ck / name).write_bytes((ck / name).read_bytes()[:100])
    with pytest.raises(store.CheckpointError) as err:
        train_run(cfg, tmp_path, progress=False)
    assert f"Delete {ck / 'latest.pt'} and {ck / 'latest.prev.pt'} to restart the run from epoch 1" in str(err.value)
    (ck / "latest.pt").unlink()
    (ck / "latest.prev.pt").unlink()
    assert outcome(train_run(cfg, tmp_path, progress=False)) == out


# ----------------------------------------------------------------------------- disk full
def _full_disk_after(n_bytes: int):
    """A `torch.save` that writes `n_bytes` of the real file, then fails as a full disk does."""
    real = torch.save

    def save(obj, fh, *a, **k):
        import io

        buf = io.BytesIO()
        real(obj, buf, *a, **k)
        fh.write(buf.getvalue()[:n_bytes])
        raise OSError(errno.ENOSPC, "No space left on device")
    return save


def test_full_disk_keeps_the_previous_checkpoint(mg_ref, tmp_path, monkeypatch):
    cfg, out = mg_ref
    with pytest.raises(StopRequested):
        train_run(cfg, tmp_path, stop_after_epochs=1, progress=False)
    rdir = _rdir(tmp_path, cfg)
    before = {p: p.read_bytes() for p in (rdir / "ckpt").glob("*.pt")}
    monkeypatch.setattr(torch, "save", _full_disk_after(300))
    with pytest.raises(store.DiskFullError) as err:
        train_run(cfg, tmp_path, progress=False)
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC
    assert re.search(rf"disk full while writing {re.escape(str(rdir / 'ckpt'))}/\S+\.pt \(.*\); free space on the "
                     rf"disk holding {re.escape(str(rdir / 'ckpt'))} and re-run the same command", str(err.value))
    assert all(p.read_bytes() == b for p, b in before.items())  # untouched: latest.pt still holds epoch 1
    assert store.load_torch(rdir / "ckpt" / "latest.pt")["epoch"] == 1
    assert not list(rdir.rglob("*.tmp")), "the partial temporary file is removed"
    assert outcome(train_run(cfg, tmp_path, progress=False)) == out


def test_full_disk_while_writing_text_keeps_the_old_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    store.atomic_write_text(path, "old\n")

    def half_then_full(fh):
        fh.write("new ro")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(store.DiskFullError, match=re.escape(f"disk full while writing {path} (the previous file is intact)")):
        store._atomic(path, half_then_full, "w")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


# ----------------------------------------------------------------------------- NaN / Inf loss
def _poisoned_mg_task(cfg, at_step: int, value: float):
    """The MG task with its model's training forward pass returning `value` at training step `at_step`."""
    task = task_for(cfg)
    build = task.build
    calls = {"n": 0}

    def hook(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] == at_step:
                return output * value
        return output

    def poisoned_build(device):
        build(device)
        task.model.register_forward_hook(hook)
    task.build = poisoned_build
    return task


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_mg_non_finite_loss_stops_naming_run_epoch_batch(mg_ref, tmp_path, value):
    cfg, _ = mg_ref
    with pytest.raises(engine.NonFiniteLoss) as err:
        engine.run(_poisoned_mg_task(cfg, at_step=4, value=value), tmp_path, progress=False)  # epoch 2, batch 2
    rdir = _rdir(tmp_path, cfg)
    latest = rdir / "ckpt" / "latest.pt"
    assert f"run {cfg.run_id}, epoch 2, batch 2 (1-based); the last good checkpoint is kept ({latest})" in str(err.value)
    assert store.load_torch(latest)["epoch"] == 1
    assert max(r["epoch"] for r in store.read_metrics(rdir)) == 1 and not store.is_done(rdir)


def test_aim_non_finite_loss_stops_naming_run_epoch_batch(aim_ref, tmp_path, monkeypatch):
    cfg, _ = aim_ref
    real = aim_loop.aim_loss_terms
    calls = {"n": 0}

    def poisoned(*a, **k):
        loss, parts = real(*a, **k)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 1 else loss), parts
    monkeypatch.setattr(aim_loop, "aim_loss_terms", poisoned)
    with pytest.raises(engine.NonFiniteLoss) as err:
        train_run(cfg, tmp_path, progress=False)
    assert f"run {cfg.run_id}, epoch 1, batch 1 (1-based); the last good checkpoint is kept (none yet" in str(err.value)
    rdir = _rdir(tmp_path, cfg)
    assert not (rdir / "ckpt" / "latest.pt").exists() and not store.is_done(rdir)
    assert cfg.run_id not in store.list_runs(tmp_path, cfg.profile)  # a failed run is not listed
    assert cfg.run_id in store.list_runs(tmp_path, cfg.profile, unfinished=True)


def test_loss_check_without_per_step_sync():
    """The accelerator path records the first bad step on the device and raises once."""
    check = engine.LossCheck(torch.device("cpu"))
    check.eager = False
    for v in (1.0, 2.0, float("inf"), float("nan")):
        check.update(torch.tensor(v))
    with pytest.raises(engine.NonFiniteLoss, match=r"\(inf\) in batch 3"):
        check.raise_if_bad()


def test_loss_check_under_torchrun_defers_to_the_end_of_the_epoch():
    """Under torchrun every rank steps on (no rank leaves the collectives alone) and the check at the
    end of the epoch is collective (here a world of one: the reductions are the identity); two ranks
    in `tests/test_ddp.py::test_a_nan_on_one_rank_stops_every_rank`."""
    check = engine.LossCheck(torch.device("cpu"), distributed=True)
    for v in (1.0, float("nan"), float("inf")):
        check.update(torch.tensor(v))  # does not raise here
    with pytest.raises(engine.NonFiniteLoss, match=r"\(nan\) in batch 2"):
        check.raise_if_bad()
    clean = engine.LossCheck(torch.device("cpu"), distributed=True)
    clean.update(torch.tensor(1.0))
    clean.raise_if_bad()


# ----------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_says_where_the_run_resumes(mg_ref, tmp_path):
    cfg, out = mg_ref
    task = task_for(cfg)
    build = task.build

    def interrupting_build(device):
        build(device)
        calls = {"n": 0}

        def hook(module, inputs, output):
            calls["n"] += module.training
            if calls["n"] == 3:  # epoch 2, batch 1
                raise KeyboardInterrupt
        task.model.register_forward_hook(hook)
    task.build = interrupting_build
    with pytest.raises(engine.RunInterrupted, match=rf"\[{cfg.run_id}\] interrupted; re-run the same command "
                                                    r"to resume from epoch 2$"):
        engine.run(task, tmp_path, progress=False)
    assert outcome(train_run(cfg, tmp_path, progress=False)) == out


def test_ctrl_c_in_the_cli_prints_no_traceback(mg_ref, tmp_path, capsys):
    """SIGINT while `rightfocus train` writes epoch 2's latest.pt: one line, exit 130; the same command
    then resumes from epoch 2 (epoch 2's checkpoint was never renamed into place)."""
    cfg, out = mg_ref
    config = write_config(cfg, tmp_path)
    # SIGINT as a terminal delivers it: a suite started in the background of a non-interactive shell
    # (``make test &``) inherits SIGINT ignored, and a child would keep ignoring it
    proc = subprocess.Popen(train_cmd(config, tmp_path / "res"), env=env(**{store.FAULT_ENV: "latest.pt@2"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    for line in proc.stderr:
        if "fault-pause" in line:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"interrupted; re-run the same command to resume from epoch 2" in err
    rdir = _rdir(tmp_path / "res", cfg)
    assert not list(rdir.rglob("*.tmp"))
    capsys.readouterr()
    train_run(cfg, tmp_path / "res", progress=False)  # the same run again (in this process: saves a start-up)
    assert f"resuming {cfg.run_id} from epoch 2" in capsys.readouterr().out
    assert outcome(rdir) == out


# ----------------------------------------------------------------------------- kill -9
def _kill_and_resume(ref, point: str, tmp_path: Path) -> None:
    cfg, out = ref
    config = write_config(cfg, tmp_path)
    results = tmp_path / "res"
    kill_at(config, results, point)
    rdir = _rdir(results, cfg)
    assert not store.is_done(rdir)
    assert cfg.run_id not in store.list_runs(results, cfg.profile), "an interrupted run is not listed as a run"
    train_run(cfg, results, progress=False)  # the same run again (in this process: saves a start-up)
    got = outcome(rdir)
    assert got["files"] == out["files"]
    assert got == out


# fast: AIM mid-epoch (MG's fast interruption is the Ctrl-C test above); the rest in `make test-slow`
@pytest.mark.parametrize("point", [
    pytest.param("latest.pt@2", marks=pytest.mark.slow),  # during epoch 2's checkpoint write
    pytest.param("train batch@3", marks=pytest.mark.slow),  # mid-epoch 2
    pytest.param("val batch@2", marks=pytest.mark.slow),    # during epoch 2's validation
    pytest.param("test batch@1", marks=pytest.mark.slow),   # during the test phase
    pytest.param("done@1", marks=pytest.mark.slow),         # while writing the completion marker
    pytest.param("config.yaml@1", marks=pytest.mark.slow),  # while creating the run folder
])
def test_mg_kill_then_rerun_equals_uninterrupted(mg_ref, tmp_path, point):
    _kill_and_resume(mg_ref, point, tmp_path)


@pytest.mark.parametrize("point", [
    "train batch@2",                                       # in epoch 2 (one step per epoch)
    pytest.param("latest.pt@1", marks=pytest.mark.slow),
    pytest.param("masks/epoch_2.pt@1", marks=pytest.mark.slow),
    pytest.param("val batch@1", marks=pytest.mark.slow),
    pytest.param("test batch@1", marks=pytest.mark.slow),
    pytest.param("examples.pt@1", marks=pytest.mark.slow),
])
def test_aim_kill_then_rerun_equals_uninterrupted(aim_ref, tmp_path, point):
    _kill_and_resume(aim_ref, point, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("paper", ["mg", "aim"])
@pytest.mark.parametrize("seed", [0, 1])
def test_kill_at_random_points_then_rerun_equals_uninterrupted(mg_ref, aim_ref, tmp_path, paper, seed):
    """Killed at a random batch of any pass, then (after re-running) at a random file write, then
    finished: still the uninterrupted run's outcome."""
    import random

    rng = random.Random(f"{paper}-{seed}")
    cfg, out = mg_ref if paper == "mg" else aim_ref
    config = write_config(cfg, tmp_path)
    results = tmp_path / "res"
    kill_at(config, results, f" batch@{rng.randint(1, 5)}")   # train/val/test batches (>= 5 in both runs)
    kill_at(config, results, f"/@{rng.randint(1, 4)}")        # any atomic write (>= 4 before the end)
    train_run(cfg, results, progress=False)
    assert outcome(_rdir(results, cfg)) == out


# ----------------------------------------------------------------------------- concurrency
def _train_twice_at_once(ref, tmp_path: Path, capsys) -> None:
    """Process A (`rightfocus train`) pauses inside epoch 1 holding the run lock; B (`train_run` here, in a
    thread) starts the same run and says it waits; then A goes on (SIGUSR1). Both end well, every epoch
    is trained once (by A), B finds `done` and trains nothing."""
    cfg, out = ref
    config = write_config(cfg, tmp_path)
    results = tmp_path / "res"
    a = subprocess.Popen(train_cmd(config, results), env=env(**{store.FAULT_ENV: "train batch@1:300"}),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert a.stderr is not None
        for line in a.stderr:
            if "fault-pause" in line:
                break
        capsys.readouterr()
        b_result: dict = {}
        b = threading.Thread(target=lambda: b_result.update(rdir=train_run(cfg, results, progress=False)))
        b.start()
        said = ""
        for _ in range(600):
            said += capsys.readouterr().out
            if "another process is training this run; waiting" in said or not b.is_alive():
                break
            time.sleep(0.1)
        a.send_signal(signal.SIGUSR1)
        b.join(600)
        out_a, err_a = a.communicate(timeout=600)
    finally:
        a.kill()
    said += capsys.readouterr().out
    assert a.returncode == 0, err_a[-3000:]
    assert "another process is training this run; waiting" in said, said
    assert "resuming" not in said and b_result["rdir"] == _rdir(results, cfg)
    epochs = re.findall(rf"\[{re.escape(cfg.run_id)}\] epoch (\d+)/", out_a)
    assert sorted(map(int, epochs)) == list(range(1, cfg.epochs + 1))  # each epoch trained once, by A
    assert outcome(_rdir(results, cfg)) == out


def test_two_processes_never_train_the_same_mg_run_twice(mg_ref, tmp_path, capsys):
    _train_twice_at_once(mg_ref, tmp_path, capsys)


@pytest.mark.slow
def test_two_processes_never_train_the_same_aim_run_twice(aim_ref, tmp_path, capsys):
    _train_twice_at_once(aim_ref, tmp_path, capsys)


def _update_many(path: str, worker: int) -> None:
    for i in range(25):
        store.update_json(path, {f"w{worker}-{i}": i})


def test_concurrent_updates_of_a_shared_json_file_are_never_lost(tmp_path):
    """`store.update_json` (render_report.json of `make -j` render jobs): 4 processes x 25 updates."""
    path = tmp_path / "render_report.json"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_update_many, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    assert json.loads(path.read_text()) == {f"w{w}-{i}": i for w in range(4) for i in range(25)}


def test_a_killed_writer_leaves_no_partial_file_for_readers(tmp_path):
    """SIGKILL between an atomic write's temporary file and its rename: the target keeps its old
    content; the temporary file is removed the next time the run starts (`remove_partial_writes`)."""
    path = tmp_path / "run" / "metrics.jsonl"
    store.atomic_write_text(path, "old\n")
    code = ("import sys; from rightfocus.runs import store; "
            f"store.atomic_write_text({str(path)!r}, 'new\\n' * 1000)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env(**{store.FAULT_ENV: "metrics.jsonl@1"}),
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "fault-pause" in line:
            proc.kill()
            break
    proc.wait()
    assert path.read_text() == "old\n"
    assert [p.name for p in store.remove_partial_writes(path.parent)][0].startswith(".metrics.jsonl.")
    assert [p.name for p in path.parent.iterdir()] == ["metrics.jsonl"]


# ----------------------------------------------------------------------------- damaged store files
@pytest.mark.parametrize("name,text,pattern", [
    ("config.yaml", "seed: [1, 2\n", r"config\.yaml line \d+: not valid YAML .*delete .* and train the run again"),
    ("metrics.jsonl", '{"epoch": 1}\n{"epoch": 2, \n', r"metrics\.jsonl line 2: not a JSON row"),
    ("done", '{"selected_epoch": ', r"done line 1 column \d+: not valid JSON .*delete it and re-run"),
])
def test_damaged_store_files_name_file_line_and_fix(tmp_path, name, text, pattern):
    from rightfocus.runs.config import RunConfig

    rdir = tmp_path / "demo" / "runs" / "r"
    store.write_config(rdir, RunConfig())
    store.write_metrics(rdir, [{"epoch": 1}])
    store.write_done(rdir, {"selected_epoch": 1})
    (rdir / name).write_text(text)
    with pytest.raises(ValueError, match=pattern):
        {"config.yaml": store.load_config, "metrics.jsonl": store.read_metrics, "done": store.read_done}[name](rdir)
