"""`rightfocus launch`: a tiny guided group through submitit's local and debug executors (baseline
before the guided run that starts from it), a simulated preemption that is requeued and resumes to
the metrics of an uninterrupted launch, the status view, and the sbatch scripts of the SLURM
executor (dependencies, requeue, signal) written through fake `sbatch` / `srun` / `sacct`."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from rightfocus import launch as L
from rightfocus.cli import main
from rightfocus.data.synthetic import make
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig
from rightfocus.experiments.grids import group_configs


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    return make("voc2007", tmp_path_factory.mktemp("voc"), seed=0, n_train=8, n_val=4, n_test=4,
                min_size=24, max_size=28)


def _group(voc: Path) -> list[RunConfig]:
    """A baseline (1 epoch) and a guided run starting from it (2 epochs, so a preemption after the
    first checkpoint leaves an epoch to resume)."""
    base = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=1,
                     lr=1e-2, batch_size=4, image_size=16, seed=0, threads=1)
    guided = replace(base, method="ixg", tap="final", loss="energy", lam=1.0, epochs=2, lr=1e-3,
                     init_from=base.run_id)
    return [guided, base]  # guided first: the launcher must order them


def _rows(results: Path, rid: str) -> list[dict]:
    rows = store.read_metrics(store.run_dir(results, "demo", rid))
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]


def _job_record(results: Path, rid: str) -> dict:
    return json.loads((L.launch_dir(results, "demo", "mg") / "runs" / f"{rid}.job.json").read_text())


OPTS = L.JobOptions(timeout_min=60, array_parallelism=2, signal_delay_s=30)


@pytest.fixture(scope="module")
def debug_results(tmp_path_factory, voc) -> Path:
    results = tmp_path_factory.mktemp("debug")
    L.launch(_group(voc), "debug", results, OPTS, log=lambda s: None)
    return results


# ---- planning -----------------------------------------------------------------------------------
def test_waves_put_baselines_first_and_skip_done(voc, tmp_path):
    cfgs = group_configs("voc-main", "demo", str(voc.parent))
    runs = L.plan(cfgs, tmp_path)
    order = L.waves(runs)
    wave_of = {r.run_id: k for k, w in enumerate(order) for r in w}
    assert len(wave_of) == len(cfgs)
    for c in cfgs:
        assert all(wave_of[b] < wave_of[c.run_id] for b in L._needs(c))
        assert (c.init_from is None) == (wave_of[c.run_id] == 0)
    # configs are written where `rightfocus grid` writes them, with the same text
    from rightfocus.runs.config import load_config_file

    assert load_config_file(runs[0].config) == cfgs[0]
    assert runs[0].config == tmp_path / "demo" / "mg" / "configs" / f"{cfgs[0].run_id}.yaml"
    # a settled (done) baseline removes the dependency wave
    bases = {r.run_id for r in runs if not r.needs}
    assert len(L.waves([r for r in runs if r.needs], settled=bases)) == 1
    with pytest.raises(ValueError, match="neither done nor part of this launch"):
        L.waves([r for r in runs if r.needs])


# ---- debug executor (in process) ----------------------------------------------------------------
def test_debug_executor_runs_the_group_in_dependency_order(voc, debug_results):
    guided, base = _group(voc)
    for c in (base, guided):
        assert store.is_done(store.run_dir(debug_results, "demo", c.run_id))
    assert store.read_done(store.run_dir(debug_results, "demo", guided.run_id))["init_from_resolved"] == base.run_id
    states = {s.run_id: s for s in L.launch_status("mg", "demo", debug_results)}
    assert {k: s.state for k, s in states.items()} == {base.run_id: "done", guided.run_id: "done"}
    assert all(s.job_id and s.job_id.startswith("DEBUG_") for s in states.values())
    # a second launch finds every run done and submits nothing
    assert L.launch(_group(voc), "debug", debug_results, OPTS, log=lambda s: None) == []


# ---- local executor: end to end, and a simulated preemption -------------------------------------
@pytest.mark.slow
def test_local_executor_preempted_jobs_resume_to_the_uninterrupted_metrics(voc, debug_results, tmp_path):
    """~1-3 min: four job starts (each a fresh Python importing torch)."""
    guided, base = _group(voc)
    results = tmp_path / "preempted"
    L.launch(_group(voc), "local", results, OPTS, simulate_preemption=True, log=lambda s: None)
    for c in (base, guided):
        # the job was signalled after its first checkpoint, checkpointed and requeued once (a
        # preemption, not a time-out), and the resumed run ends with the in-process launch's metrics
        rec = _job_record(results, c.run_id)
        assert (rec["attempts"], rec["state"]) == (2, "finished")
        log = (L.launch_dir(results, "demo", "mg") / "jobs" / f"{rec['job_id']}_0_log.out").read_text()
        assert "this job is preempted" in log and "Requeued job" in log
        assert _rows(results, c.run_id) == _rows(debug_results, c.run_id)
    a = store.read_done(store.run_dir(results, "demo", guided.run_id))
    b = store.read_done(store.run_dir(debug_results, "demo", guided.run_id))
    assert (a["selected_epoch"], a["front_epochs"], a["init_from_resolved"]) == \
        (b["selected_epoch"], b["front_epochs"], base.run_id)
    states = L.launch_status("mg", "demo", results)
    assert {s.state for s in states} == {"done"} and all(Path(s.log).exists() for s in states)


# ---- status view --------------------------------------------------------------------------------
def _record(results: Path, rid: str, **rec) -> None:
    L._write_json(L.launch_dir(results, "demo", "mg") / "runs" / f"{rid}.json", rec)


def test_status_reports_each_state(tmp_path, monkeypatch):
    results = tmp_path
    jobs = L.launch_dir(results, "demo", "mg") / "jobs"
    jobs.mkdir(parents=True)
    # done (marker), running (a live local process), failed (a gone process / an error result),
    # pending (waiting for its baseline), not launched (no record)
    store.write_done(store.run_dir(results, "demo", "r-done"), {"ok": 1})
    _record(results, "r-done", executor="local", job_id="1", log="x")
    _record(results, "r-running", executor="local", job_id=str(os.getpid()), log="l1")
    _record(results, "r-gone", executor="local", job_id="999999999", log="l2")
    import cloudpickle

    (jobs / "4242_0_result.pkl").write_bytes(cloudpickle.dumps(("error", "Traceback...\nValueError: boom")))
    _record(results, "r-error", executor="local", job_id="4242", log="l3")
    _record(results, "r-wait", executor="local", job_id=None, needs=["r-running"])
    _record(results, "r-blocked", executor="local", job_id=None, needs=["r-gone"], blocked_by=["r-gone"])
    # debug jobs run in the launching process: running while it lives
    import socket

    for rid, pid in (("d-live", os.getpid()), ("d-dead", 999999999)):
        _record(results, rid, executor="debug", job_id="DEBUG_1", log="d")
        L._write_json(L.launch_dir(results, "demo", "mg") / "runs" / f"{rid}.job.json",
                      {"state": "running", "pid": pid, "host": socket.gethostname(), "attempts": 1})
    # SLURM: one sacct call for every job; states mapped
    bin_dir = _fake_slurm(tmp_path, sacct="JobID|State|NodeList\n101|RUNNING|n1\n102_3|PENDING|None\n"
                                          "103|CANCELLED by 7|n2\n104|TIMEOUT|n3\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for rid, jid in (("s-run", "101"), ("s-pend", "102_3"), ("s-cancel", "103"), ("s-timeout", "104")):
        _record(results, rid, executor="slurm", job_id=jid, log=f"{jid}.out")
    got = {s.run_id: s for s in L.launch_status("mg", "demo", results, None)}
    want = {"r-done": "done", "r-running": "running", "r-gone": "failed", "r-error": "failed",
            "r-wait": "pending", "r-blocked": "failed", "s-run": "running", "s-pend": "pending",
            "s-cancel": "failed", "s-timeout": "failed", "d-live": "running", "d-dead": "failed"}
    assert {k: s.state for k, s in got.items()} == want
    assert "boom" in got["r-error"].detail and got["s-pend"].job_id == "102_3"
    rows = L.launch_status("mg", "demo", results, ["r-running", "never"])
    assert [r.state for r in rows] == ["running", "not launched"]
    text = L.format_status(rows)
    assert "l1" in text and "1 running, 1 not launched" in text


# ---- SLURM: the sbatch scripts ------------------------------------------------------------------
def _fake_slurm(tmp: Path, sacct: str | None = None) -> Path:
    """`srun`, `sbatch` (prints a new job id, keeps the script) and optionally `sacct` on a PATH dir."""
    bin_dir = tmp / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    scripts = {
        "srun": "#!/bin/sh\nexit 0\n",
        "sbatch": (f'#!/bin/sh\nc="{tmp}/sbatch_count"\nn=$(( $(cat "$c" 2>/dev/null || echo 500) + 1 ))\n'
                   f'echo $n > "$c"\ncp "$1" "{tmp}/sbatch_$n.sh"\necho "Submitted batch job $n"\n'),
    }
    if sacct is not None:
        scripts["sacct"] = f"#!/bin/sh\ncat <<'EOF'\n{sacct}EOF\n"
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_slurm_scripts_carry_dependencies_requeue_and_resources(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_fake_slurm(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    results = tmp_path / "results"
    cfgs = group_configs("voc-main", "paper", "/data")
    opts = L.JobOptions(partition="gpu", gpus_per_node=1, cpus_per_task=16, mem_gb=64, timeout_min=600,
                        account="proj", qos="high", array_parallelism=8, sbatch={"constraint": "h200"},
                        setup=("source .venv/bin/activate",), signal_delay_s=300)
    subs = {s.run_id: s for s in L.launch(cfgs, "slurm", results, opts, log=lambda s: None)}
    assert set(subs) == {c.run_id for c in cfgs}
    scripts = {int(p.stem.split("_")[1]): p.read_text() for p in tmp_path.glob("sbatch_*.sh")}
    base_ids = {c.run_id for c in cfgs if c.init_from is None}
    # baselines: one array, no dependency; guided runs: one array per set of baselines, afterok on all
    # of that set's array tasks (the paper sweeps three baseline lrs)
    first = scripts[min(scripts)]
    assert f"#SBATCH --array=0-{len(base_ids) - 1}%8" in first and "--dependency" not in first
    for c in cfgs:
        s = subs[c.run_id]
        script = scripts[int(s.job_id.split("_")[0])]
        for flag in ("--requeue", "--signal=USR2@300", "--partition=gpu", "--gpus-per-node=1",
                     "--cpus-per-task=16", "--mem=64GB", "--time=600", "--account=proj", "--qos=high",
                     "--constraint=h200", "--open-mode=append"):
            assert f"#SBATCH {flag}\n" in script, (flag, script)
        assert "source .venv/bin/activate" in script
        if c.init_from is not None:
            needs = sorted(subs[b].job_id for b in c.init_from)
            assert len(needs) == 3 and all(re.fullmatch(r"\d+_\d+", j) for j in needs)
            assert f"#SBATCH --dependency=afterok:{':'.join(needs)}\n" in script
            assert "#SBATCH --kill-on-invalid-dep=yes\n" in script
        assert s.log.endswith(f"{s.job_id}_0_log.out")
    # the job a script runs is a RunJob on the run's config; its checkpoint requeues the same run
    import cloudpickle

    job_dir = L.launch_dir(results, "paper", "mg") / "jobs"
    sub = next(iter(subs.values()))
    delayed = cloudpickle.loads((job_dir / f"{sub.job_id}_submitted.pkl").read_bytes())
    assert isinstance(delayed.function, L.RunJob) and delayed.function.config == sub.config
    again = delayed.function.checkpoint()
    assert isinstance(again.function, L.RunJob) and again.function.config == sub.config
    assert delayed._timeout_countdown == opts.max_requeues
    # without sacct the status falls back on the records: everything queued is pending; launching
    # again submits nothing new
    states = L.launch_status("mg", "paper", results)
    assert {s.state for s in states} == {"pending"} and len(states) == len(cfgs)
    n = len(scripts)
    L.launch(cfgs, "slurm", results, opts, log=lambda s: None)
    assert len(list(tmp_path.glob("sbatch_*.sh"))) == n


def test_cli_launch_dry_run_and_status(tmp_path, capsys, monkeypatch):
    assert main(["launch", "--paper", "aim", "--profile", "demo", "--group", "aim-edgeinit",
                 "--results", str(tmp_path), "--dry-run", "--executor", "local"]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs to submit" in out and "wave 0: 2 runs" in out and "wave 1" not in out  # AIM runs: independent
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"
    assert main(["launch", "--status", "--paper", "aim", "--profile", "demo", "--group", "aim-edgeinit",
                 "--results", str(tmp_path)]) == 0
    assert "2 not launched" in capsys.readouterr().out
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun: a clear error, not a traceback
    assert main(["launch", "--paper", "mg", "--group", "voc-main", "--executor", "slurm",
                 "--results", str(tmp_path)]) == 2
    assert "needs `srun`" in capsys.readouterr().err


def test_dry_run_summarises_warns_on_defaults_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WEIGHTS_ROOT", raising=False)
    results = tmp_path / "results"
    assert main(["launch", "--paper", "mg", "--profile", "paper", "--group", "voc-main", "--group", "voc-limited",
                 "--results", str(results), "--dry-run"]) == 0
    out = capsys.readouterr().out
    ids = {c.run_id for g in ("voc-main", "voc-limited") for c in group_configs(g, "paper", "data")}
    base = {c.run_id for g in ("voc-main", "voc-limited") for c in group_configs(g, "paper", "data") if c.is_baseline}
    assert f"{len(ids)} of {len(ids)} runs to submit" in out
    assert f"wave 0: {len(base)} runs" in out and f"wave 1: {len(ids) - len(base)} runs" in out
    assert re.search(r"voc-main\s+81 to submit of 81", out) and "voc-limited" in out
    assert "WARNING --data-root is the default 'data'" in out and "weights read from: (not set" in out
    assert "[weights] WEIGHTS_ROOT is not set" in out and "a launch would stop" in out
    assert len(out.splitlines()) < 30 and not results.exists()


def test_launch_runs_the_preflight_first_and_writes_nothing_on_a_problem(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["launch", "--paper", "mg", "--profile", "paper", "--group", "voc-main", "--executor", "debug",
                 "--data-root", str(tmp_path / "nowhere"), "--weights-root", str(tmp_path), "--results",
                 str(results)]) == 1
    err = capsys.readouterr().err
    assert "[data voc2007] dataset folder" in err and "nothing was submitted or written" in err
    assert not results.exists()


def test_debug_executor_records_a_user_error_without_a_debugger(voc, tmp_path):
    """A run whose data is gone: the debug executor's job records the error; no post-mortem debugger
    (pdb would read pytest's captured stdin and raise)."""
    base = replace(_group(voc)[1], data_root=str(tmp_path / "gone"))
    lines: list[str] = []
    (rec,) = L.launch([base], "debug", tmp_path, OPTS, log=lines.append)
    assert any("failed: FileNotFoundError" in line for line in lines), lines
    assert L.launch_status("mg", "demo", tmp_path, [rec.run_id])[0].state == "failed"
