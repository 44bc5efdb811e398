"""The three steps `launch` composes, each on its own: plan (`plan_launch`: configs -> settled runs and
waves), record (`record_pending`, `record_submitted`, `record_blocked`: the launch records
`launch_status` reads) and submit (`submit_slurm` with its dependencies, `WaveRunner` on the debug
executor).

Oracles: the run store's ``done`` markers, the launch records on disk, the job ids the executor
returned, and the SLURM parameters a recording executor saw at each submission."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from rightfocus import launch as L
from rightfocus.data.synthetic import make
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    return make("voc2007", tmp_path_factory.mktemp("voc"), seed=0, n_train=8, n_val=4, n_test=4,
                min_size=24, max_size=28)


def _pair(voc: Path) -> tuple[RunConfig, RunConfig]:
    """(guided, its baseline): one epoch each on the tiny dataset."""
    base = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=1,
                     lr=1e-2, batch_size=4, image_size=16, seed=0, threads=1)
    return replace(base, method="ixg", tap="final", loss="energy", lam=1.0, init_from=base.run_id), base


def _record(plan: L.LaunchPlan, run_id: str) -> dict:
    return json.loads((plan.record_dir / "runs" / f"{run_id}.json").read_text())


def test_plan_orders_runs_after_their_baselines_and_settles_done_ones(voc, tmp_path):
    guided, base = _pair(voc)
    plan = L.plan_launch([guided, base], "debug", tmp_path, write=False, log=lambda s: None)
    assert not any(tmp_path.iterdir()), "write=False writes nothing"
    assert [[r.run_id for r in w] for w in plan.waves] == [[base.run_id], [guided.run_id]]
    assert (plan.paper, plan.profile, plan.done, plan.in_flight) == ("mg", "demo", set(), {})
    assert plan.record_dir == L.launch_dir(tmp_path, "demo", "mg")
    store.write_done(store.run_dir(tmp_path, "demo", base.run_id), {})
    plan = L.plan_launch([guided, base], "debug", tmp_path, log=lambda s: None)
    assert plan.done == {base.run_id} and [r.run_id for r in plan.todo] == [guided.run_id]
    assert [[r.run_id for r in w] for w in plan.waves] == [[guided.run_id]]
    assert (tmp_path / "demo" / "mg" / "configs" / f"{guided.run_id}.yaml").exists()
    with pytest.raises(ValueError, match="one paper and profile"):
        L.plan_launch([base, replace(base, profile="paper")], "debug", tmp_path)


def test_record_then_run_the_waves_on_the_debug_executor(voc, tmp_path):
    guided, base = _pair(voc)
    lines: list[str] = []
    plan = L.plan_launch([guided, base], "debug", tmp_path, log=lines.append)
    records = L.record_pending(plan, "debug")
    pending = L.launch_status("mg", "demo", tmp_path, [base.run_id, guided.run_id])
    assert [(s.state, s.job_id) for s in pending] == [("pending", None), ("pending", None)]
    assert pending[1].detail == f"waits for {base.run_id}"
    ex = L.make_executor("debug", plan.record_dir / "jobs", L.JobOptions())
    runner = L.WaveRunner(ex, "debug", plan, records,
                          lambda r: L.RunJob(r.config, tmp_path, plan.record_dir, raise_user_errors=False),
                          L.JobOptions(), log=lines.append)
    runner.run()
    assert runner.ok == {base.run_id, guided.run_id} and runner.failed == set()
    for rid in (base.run_id, guided.run_id):
        assert store.is_done(store.run_dir(tmp_path, "demo", rid))
        assert records[rid].job_id.startswith("DEBUG_") and _record(plan, rid) == asdict(records[rid])
    assert lines == [f"{base.run_id}: job {records[base.run_id].job_id}",
                     f"{guided.run_id}: job {records[guided.run_id].job_id} after {base.run_id}"]


def test_a_failed_baseline_blocks_its_guided_run(voc, tmp_path):
    guided, base = (replace(c, data_root=str(tmp_path / "gone")) for c in _pair(voc))
    guided = replace(guided, init_from=base.run_id)
    lines: list[str] = []
    plan = L.plan_launch([guided, base], "debug", tmp_path, log=lines.append)
    records = L.record_pending(plan, "debug")
    ex = L.make_executor("debug", plan.record_dir / "jobs", L.JobOptions())
    L.WaveRunner(ex, "debug", plan, records,
                 lambda r: L.RunJob(r.config, tmp_path, plan.record_dir, raise_user_errors=False),
                 L.JobOptions(), log=lines.append).run()
    assert records[guided.run_id].job_id is None and _record(plan, guided.run_id)["blocked_by"] == [base.run_id]
    assert lines[-1] == f"{guided.run_id}: not started, its baseline failed: {base.run_id}"
    states = {s.run_id: s for s in L.launch_status("mg", "demo", tmp_path)}
    assert states[base.run_id].state == "failed" and "FileNotFoundError" in states[base.run_id].detail
    assert (states[guided.run_id].state, states[guided.run_id].detail) == ("failed", f"baseline failed: {base.run_id}")


class _RecordingSlurm:
    """Stands in for submitit's SLURM executor: numbers jobs from 101 and notes the extra sbatch
    parameters in force at each submission."""

    def __init__(self) -> None:
        self.parameters: dict = {}
        self.seen: list[tuple[str, dict]] = []

    def update_parameters(self, slurm_additional_parameters: dict) -> None:
        self.parameters["additional_parameters"] = slurm_additional_parameters

    @contextmanager
    def batch(self):
        yield

    def submit(self, job: L.RunJob) -> SimpleNamespace:
        self.seen.append((Path(job.config).stem, dict(self.parameters["additional_parameters"])))
        n = 100 + len(self.seen)
        return SimpleNamespace(job_id=str(n), paths=SimpleNamespace(stdout=f"/logs/{n}.out"))


def test_slurm_submission_makes_guided_jobs_wait_for_their_baselines(voc, tmp_path):
    guided, base = _pair(voc)
    plan = L.plan_launch([guided, base], "slurm", tmp_path, log=lambda s: None)
    records = L.record_pending(plan, "slurm")
    ex = _RecordingSlurm()
    L.submit_slurm(ex, plan, records, lambda r: L.RunJob(r.config, tmp_path, plan.record_dir), log=lambda s: None)
    assert ex.seen == [(base.run_id, {}), (guided.run_id, {"dependency": "afterok:101", "kill_on_invalid_dep": "yes"})]
    assert [(records[r].job_id, records[r].log) for r in (base.run_id, guided.run_id)] == \
        [("101", "/logs/101.out"), ("102", "/logs/102.out")]
    assert _record(plan, guided.run_id)["job_id"] == "102"
    # a baseline in flight under an earlier job: its guided run waits for that job
    waiting = L.LaunchPlan(plan.paper, plan.profile, tmp_path, plan.record_dir, plan.runs, set(),
                           {base.run_id: "77"}, [plan.waves[1][0]], [[plan.waves[1][0]]])
    ex = _RecordingSlurm()
    L.submit_slurm(ex, waiting, L.record_pending(waiting, "slurm"), lambda r: L.RunJob(r.config, tmp_path, "x"),
                   log=lambda s: None)
    assert ex.seen == [(guided.run_id, {"dependency": "afterok:77", "kill_on_invalid_dep": "yes"})]
