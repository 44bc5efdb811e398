"""A paper grid on a cluster: one submitit job per run, baselines first, requeue on preemption.

`rightfocus launch --paper mg|aim --profile P [--group G ...] --executor slurm|local|debug` takes the
runs of the grid (`rightfocus.experiments.grids` / `aim_grids`: `group_configs`), skips the ones
already ``done``, and submits the rest through submitit (the usual cluster engine in this field):

- one job per run; on SLURM, runs that wait for the same set of jobs go in one job array
  (``--array=0-N%P``, P = ``--array-parallelism``);
- a guided run starts from its baseline(s) (``RunConfig.init_from``): on SLURM its job carries
  ``--dependency=afterok:<baseline jobs>`` (and ``--kill-on-invalid-dep=yes``, so a failed baseline
  does not leave its guided runs pending for ever); the local and debug executors start a run once
  its baselines are done;
- every job is a `RunJob`, a submitit ``Checkpointable``: on preemption or near its time limit
  SLURM sends USR2 (``--signal=USR2@<delay>``), submitit calls `RunJob.checkpoint`, which returns a
  ``DelayedSubmission`` of the same run, and requeues the job (``--requeue``); the requeued job
  calls the same entry point, which resumes from ``ckpt/latest.pt`` (a run is a pure function of
  its config, so resuming ends with the metrics of an uninterrupted run);
- the job calls one stable entry point, `rightfocus.training.runner.train_from_file` on the run's
  ``config.yaml`` (what ``rightfocus train`` and ``make mg`` call), so it keeps working when the
  engine under it changes.

`launch` composes three steps: plan (`plan_launch`: configs -> runs settled or to submit, in
dependency waves), record (`record_pending`, `record_submitted`, `record_blocked`) and submit
(`submit_slurm`; `WaveRunner` for the local and debug executors).

A small launch record is written atomically under ``<results>/<profile>/<paper>/launch/``:
``runs/<run_id>.json`` (written by the launcher: executor, job id, log, dependencies) and
``runs/<run_id>.job.json`` (written by the job itself: running, requeued, failed; two files so that
the launcher and a job that already started never overwrite each other). `launch_status` combines
them with the ``done`` marker and the scheduler's view (``sacct`` for SLURM, the process for local
jobs) into one of `STATES` per run.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from submitit.helpers import Checkpointable, DelayedSubmission

from rightfocus.runs import store
from rightfocus.runs.config import RunConfig, dump_config

EXECUTORS = ("slurm", "local", "debug")
#: a user's errors (missing data, a bad config): `rightfocus` reports them in one line, and the debug
#: executor records them as the run's failure instead of opening its post-mortem debugger
USER_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, ValueError, KeyError, FloatingPointError)
#: what `launch_status` reports per run
STATES = ("done", "running", "pending", "failed", "not launched")

#: sacct states -> our states (anything else that is final and not ``done`` is a failure)
_SLURM_PENDING = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING", "RESV_DEL_HOLD",
                  "SUSPENDED", "PREEMPTED", "RESIZING", "READY"}
_SLURM_RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}


# ---- options ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobOptions:
    """Resources and scheduler settings of every job of a launch (SLURM names in comments).

    `timeout_min` is the time limit of one job (``--time``); a run longer than that is requeued at
    the limit and resumes, up to `max_requeues` times. `sbatch` holds extra ``#SBATCH`` flags
    (``{"constraint": "h200"}`` -> ``#SBATCH --constraint=h200``); `setup` lines run before the job
    (``module load ...``, ``source .venv/bin/activate``).
    """

    partition: str | None = None          # --partition
    gpus_per_node: int = 1                # --gpus-per-node
    cpus_per_task: int | None = 8         # --cpus-per-task
    mem_gb: float | None = None           # --mem
    timeout_min: int = 24 * 60            # --time
    account: str | None = None            # --account
    qos: str | None = None                # --qos
    array_parallelism: int | None = None  # --array=0-N%P (default 64); local: jobs at once (default: GPUs)
    sbatch: dict[str, str] = field(default_factory=dict)
    setup: tuple[str, ...] = ()
    max_requeues: int = 30                # submitit's max_num_timeout (preemptions do not count)
    signal_delay_s: int = 120             # --signal=USR2@<delay>: time to leave the epoch cleanly
    name: str = "rightfocus"              # --job-name


def parse_sbatch(items: Iterable[str]) -> dict[str, str]:
    """``["constraint=h200", "exclusive"]`` -> ``{"constraint": "h200", "exclusive": True}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.lstrip("-").partition("=")
        if not key:
            raise ValueError(f"--sbatch {item!r}: give KEY=VALUE (e.g. --sbatch constraint=h200) or a flag KEY")
        out[key.replace("-", "_")] = value if sep else True
    return out


# ---- the plan ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedRun:
    """One run of a launch: its id, its config file and the baseline runs it starts from."""

    run_id: str
    config: Path
    needs: tuple[str, ...]


def launch_dir(results: str | Path, profile: str, paper: str) -> Path:
    return store.profile_dir(results, profile) / paper / "launch"


def grid_configs(paper: str, profile: str, data_root: str = "data", groups: Sequence[str] | None = None
                 ) -> list[RunConfig]:
    """The runs of `groups` (default: every group) of the paper's grid, each once, in grid order."""
    from rightfocus.papers import PAPERS

    module = PAPERS[paper].grids
    out: dict[str, RunConfig] = {}
    for group in groups or module.GROUPS:
        for cfg in module.group_configs(group, profile, data_root):
            out.setdefault(cfg.run_id, cfg)
    return list(out.values())


def _needs(config: RunConfig) -> tuple[str, ...]:
    return tuple(config.init_run_ids)


def plan(configs: Sequence[RunConfig], results: str | Path = "results", write: bool = True) -> list[PlannedRun]:
    """Write each run's config where `write_grid` puts it (``<results>/<profile>/<paper>/configs``,
    same text, so `make mg` and a launch share them; `write=False`: only say where) and return the
    runs with their dependencies."""
    out = []
    for c in configs:
        path = store.profile_dir(results, c.profile) / c.paper / "configs" / f"{c.run_id}.yaml"
        text = dump_config(c)
        if write and (not path.exists() or path.read_text() != text):
            store.atomic_write_text(path, text)
        out.append(PlannedRun(c.run_id, path, _needs(c)))
    return out


def waves(runs: Sequence[PlannedRun], settled: Iterable[str] = ()) -> list[list[PlannedRun]]:
    """Runs in dependency order: wave k holds the runs whose baselines are settled (done, or running
    under an earlier job) or in waves < k. A baseline that is neither settled nor planned is an error."""
    settled = set(settled)
    planned = {r.run_id for r in runs}
    for r in runs:
        missing = [d for d in r.needs if d not in planned and d not in settled]
        if missing:
            raise ValueError(f"run {r.run_id} starts from {missing}, which are neither done nor part of this "
                             "launch; add their group (--group) or train them first")
    out: list[list[PlannedRun]] = []
    placed = set(settled)
    left = list(runs)
    while left:
        wave = [r for r in left if all(d in placed for d in r.needs)]
        if not wave:
            raise ValueError(f"circular init_from among {[r.run_id for r in left]}")
        out.append(wave)
        placed |= {r.run_id for r in wave}
        left = [r for r in left if r.run_id not in placed]
    return out


# ---- the job ----------------------------------------------------------------------------------
def _job_record_path(record_dir: Path, run_id: str) -> Path:
    return record_dir / "runs" / f"{run_id}.job.json"


def _launch_record_path(record_dir: Path, run_id: str) -> Path:
    return record_dir / "runs" / f"{run_id}.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    store.atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _current_job_id() -> str | None:
    try:
        import submitit

        return str(submitit.JobEnvironment().job_id)
    except Exception:  # not inside a submitit job
        return None


class RunJob(Checkpointable):
    """What a submitit job runs: train (or resume, or skip when done) one run from its config file.

    A submitit ``Checkpointable``: when the job is preempted or reaches its time limit, submitit
    calls `checkpoint`, which returns a ``DelayedSubmission`` of the same run, and requeues the job;
    the requeued job resumes from the run's ``ckpt/latest.pt``.

    `raise_user_errors=False` (the debug executor): a user error (`USER_ERRORS`) is recorded as the
    run's failure and not raised, so that submitit's debug executor opens no debugger for it.

    `simulate_preemption` (tests, and a check of a cluster's requeue set-up): when the run has no
    checkpoint yet, the job sends itself the preemption signal as soon as the run writes its first
    ``ckpt/latest.pt``; the requeued job (built by `checkpoint`) runs without it.
    """

    def __init__(self, config: str | Path, results: str | Path, record_dir: str | Path,
                 simulate_preemption: bool = False, raise_user_errors: bool = True) -> None:
        self.config = str(config)
        self.results = str(results)
        self.record_dir = str(record_dir)
        self.simulate_preemption = simulate_preemption
        self.raise_user_errors = raise_user_errors

    def _run_dir(self) -> Path:
        from rightfocus.runs.config import load_config_file

        cfg = load_config_file(self.config)
        return store.run_dir(self.results, cfg.profile, cfg.run_id)

    def _note(self, state: str, **more: Any) -> None:
        rid = Path(self.config).stem
        path = _job_record_path(Path(self.record_dir), rid)
        rec = _read_json(path)
        rec.update(state=state, job_id=_current_job_id(), host=socket.gethostname(), pid=os.getpid(),
                   updated_at=_now(), **more)
        if state == "running":
            rec["attempts"] = int(rec.get("attempts", 0)) + 1
        _write_json(path, rec)

    def __call__(self) -> dict[str, Any]:
        from rightfocus.training.runner import train_from_file  # the stable entry point

        self._note("running")
        rdir = self._run_dir()
        if self.simulate_preemption:
            _preempt_after_first_checkpoint(rdir / "ckpt" / "latest.pt")
        try:
            train_from_file(self.config, results=self.results)
        except Exception as exc:
            self._note("failed", error=f"{type(exc).__name__}: {exc}")
            if self.raise_user_errors or not isinstance(exc, USER_ERRORS):
                raise
            return {"run_id": rdir.name, "dir": str(rdir), "done": False, "error": str(exc)}
        done = store.is_done(rdir)
        self._note("finished" if done else "failed", **({} if done else {"error": "ended without `done`"}))
        return {"run_id": rdir.name, "dir": str(rdir), "done": done}

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """Requeue the same run (submitit calls this on USR2: preemption or time limit)."""
        self._note("requeued")
        return DelayedSubmission(RunJob(self.config, self.results, self.record_dir,
                                        raise_user_errors=self.raise_user_errors))


def _preempt_after_first_checkpoint(latest: Path, poll_s: float = 0.01) -> None:
    """Send this process the preemption signal once `latest` appears (only if absent now)."""
    if latest.exists():
        return
    from submitit.core.job_environment import JobEnvironment

    sig = JobEnvironment._usr_sig()

    def watch() -> None:
        while not latest.exists():
            time.sleep(poll_s)
        os.kill(os.getpid(), sig)

    threading.Thread(target=watch, daemon=True).start()


# ---- submission -------------------------------------------------------------------------------
@dataclass
class Submitted:
    """One run as submitted: its job id (None while it waits for a local wave) and log file."""

    run_id: str
    executor: str
    job_id: str | None
    log: str | None
    needs: list[str]
    config: str
    submitted_at: str | None = None
    blocked_by: list[str] | None = None
    wave: int | None = None  # dependency wave (0: needs nothing that is not done)


def check_executor(kind: str) -> None:
    """Raise ValueError when `kind` is unknown or its tools are missing (SLURM: ``srun``)."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; use one of {list(EXECUTORS)}")
    if kind == "slurm":
        import shutil

        if shutil.which("srun") is None:
            raise ValueError("the slurm executor needs `srun` and `sbatch` on PATH (run on a SLURM login "
                             "node), or use --executor local")


def dry_run_summary(planned: Sequence[Submitted], groups: dict[str, list[RunConfig]], executor: str,
                    data_root: str, weights_root: str | None, results: str | Path,
                    problems: Sequence[Any] = ()) -> str:
    """What `rightfocus launch --dry-run` prints: runs per wave and per group, where the data and the
    weights will be read, where configs and runs would go, warnings on defaults and the preflight's
    problems (`rightfocus.check.Problem`)."""
    from rightfocus import project

    ids = {s.run_id for s in planned}
    every = {c.run_id for cs in groups.values() for c in cs}
    paper, profile = next(((c.paper, c.profile) for cs in groups.values() for c in cs), ("?", "?"))
    lines = [f"dry run (nothing written): {paper}/{profile}, {len(ids)} of {len(every)} runs to submit with the "
             f"{executor} executor ({len(every) - len(ids)} done or in flight)"]
    n_waves = max((s.wave for s in planned if s.wave is not None), default=-1) + 1
    for k in range(n_waves):
        lines.append(f"  wave {k}: {sum(s.wave == k for s in planned)} runs"
                     + (" (start from baselines of earlier waves)" if k else ""))
    lines.append("  runs per group (a run shared by groups counts in each):")
    lines += [f"    {g:<24} {sum(c.run_id in ids for c in cs)} to submit of {len(cs)}" for g, cs in groups.items()]
    roots = sorted({c.data_root for cs in groups.values() for c in cs})
    lines.append(f"  data read from: {', '.join(str(project.resolve(r)) for r in roots)}")
    lines.append(f"  weights read from: {weights_root or '(not set: the jobs read $WEIGHTS_ROOT of their environment)'}")
    lines.append(f"  configs to {store.profile_dir(results, profile) / paper / 'configs'}, runs to "
                 f"{store.profile_dir(results, profile) / 'runs'}")
    warn = []
    if data_root == "data":
        warn.append(f"--data-root is the default 'data' ({project.resolve('data')}); pass the folder that "
                    "holds the datasets")
    lines += [f"  WARNING {w}" for w in warn]
    if problems:
        lines.append(f"  preflight (rightfocus check's data and weights part): a launch would "
                     f"{'stop' if any(p.level == 'error' for p in problems) else 'go ahead'}:")
        lines += ["    " + p.line() for p in problems]
    lines.append(f"  every run id: .venv/bin/rightfocus grid --list --paper {paper} --profile {profile}")
    return "\n".join(lines)


def make_executor(kind: str, folder: str | Path, options: JobOptions) -> Any:
    """A submitit executor for `kind` with `options` (SLURM needs ``srun`` on PATH)."""
    import submitit

    check_executor(kind)
    if kind == "debug":
        return submitit.DebugExecutor(folder)
    if kind == "local":
        ex = submitit.LocalExecutor(folder, max_num_timeout=options.max_requeues)
        ex.update_parameters(timeout_min=options.timeout_min, gpus_per_node=options.gpus_per_node,
                             signal_delay_s=min(options.signal_delay_s, 60 * options.timeout_min // 2),
                             setup=list(options.setup))
        return ex
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=options.max_requeues)
    extra: dict[str, Any] = {"requeue": True}  # `scontrol requeue` needs requeueable jobs
    extra.update(options.sbatch)
    params: dict[str, Any] = {
        "name": options.name, "timeout_min": options.timeout_min, "gpus_per_node": options.gpus_per_node,
        "cpus_per_task": options.cpus_per_task, "mem_gb": options.mem_gb,
        "slurm_partition": options.partition, "slurm_account": options.account, "slurm_qos": options.qos,
        "slurm_array_parallelism": options.array_parallelism or 64, "slurm_signal_delay_s": options.signal_delay_s,
        "slurm_additional_parameters": extra, "slurm_setup": list(options.setup) or None,
    }
    ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return ex


def _dependency(job_ids: Sequence[str]) -> str | None:
    return "afterok:" + ":".join(sorted(job_ids)) if job_ids else None


# ---- plan, record, submit ---------------------------------------------------------------------
@dataclass
class LaunchPlan:
    """What one launch submits: its runs, which of them are settled (done, or in flight under an
    earlier job of the same executor: run id -> job id) and the rest in dependency waves."""

    paper: str
    profile: str
    results: str | Path
    record_dir: Path
    runs: list[PlannedRun]
    done: set[str]
    in_flight: dict[str, str]
    todo: list[PlannedRun]
    waves: list[list[PlannedRun]]


def plan_launch(configs: Sequence[RunConfig], executor: str, results: str | Path = "results", write: bool = True,
                log: Any = print) -> LaunchPlan:
    """Plan a launch of `configs` (one paper and profile; `plan` writes their config files unless
    `write` is False): runs done or in flight under `executor` are settled, the others ordered in `waves`."""
    keys = {(c.paper, c.profile) for c in configs}
    if len(keys) != 1:
        raise ValueError(f"one launch takes one paper and profile; got {sorted(keys)}")
    ((paper, profile),) = keys
    runs = plan(configs, results, write=write)
    current = {s.run_id: s for s in launch_status(paper, profile, results, [r.run_id for r in runs]
                                                    + [d for r in runs for d in r.needs])}
    done = {rid for rid, s in current.items() if s.state == "done"}
    in_flight = {rid: s.job_id for rid, s in current.items()
                 if s.state in ("running", "pending") and s.job_id and s.executor == executor}
    todo = [r for r in runs if r.run_id not in done and r.run_id not in in_flight]
    for rid in sorted({r.run_id for r in runs} & set(in_flight)):
        log(f"{rid}: already {current[rid].state} as job {in_flight[rid]}, not resubmitted")
    return LaunchPlan(paper, profile, results, launch_dir(results, profile, paper), runs, done, in_flight, todo,
                      waves(todo, done | set(in_flight)))


def record_pending(launch_plan: LaunchPlan, executor: str) -> dict[str, Submitted]:
    """Write a launch record for every run to submit, before the first submission (`launch_status`
    shows them pending), and drop the job records of earlier attempts."""
    records: dict[str, Submitted] = {}
    for r in launch_plan.todo:
        records[r.run_id] = Submitted(r.run_id, executor, None, None, list(r.needs), str(r.config))
        _write_json(_launch_record_path(launch_plan.record_dir, r.run_id), asdict(records[r.run_id]))
        _job_record_path(launch_plan.record_dir, r.run_id).unlink(missing_ok=True)
    return records


def record_submitted(record_dir: Path, rec: Submitted, job: Any, log: Any = print) -> None:
    """Note `job` (a submitit job) in the run's launch record `rec` and on disk."""
    rec.job_id, rec.log, rec.submitted_at = str(job.job_id), str(job.paths.stdout), _now()
    _write_json(_launch_record_path(record_dir, rec.run_id), asdict(rec))
    log(f"{rec.run_id}: job {rec.job_id}" + (f" after {', '.join(rec.needs)}" if rec.needs else ""))


def record_blocked(record_dir: Path, rec: Submitted, failed: Sequence[str], log: Any = print) -> None:
    """Note that the run was not started because its baselines `failed`."""
    rec.blocked_by = list(failed)
    _write_json(_launch_record_path(record_dir, rec.run_id), asdict(rec))
    log(f"{rec.run_id}: not started, its baseline failed: {', '.join(failed)}")


def submit_slurm(ex: Any, launch_plan: LaunchPlan, records: dict[str, Submitted], make_job: Any,
                 log: Any = print) -> None:
    """Queue every wave at once: per wave, one job array per set of jobs its runs wait for
    (``--dependency=afterok:<jobs>``, ``--kill-on-invalid-dep=yes``)."""
    job_of: dict[str, str] = dict(launch_plan.in_flight)
    for wave in launch_plan.waves:
        by_dep: dict[str | None, list[PlannedRun]] = {}
        for r in wave:
            by_dep.setdefault(_dependency([job_of[d] for d in r.needs if d in job_of]), []).append(r)
        for dep, group in by_dep.items():
            extra = dict(ex.parameters.get("additional_parameters") or {})
            extra.pop("dependency", None)
            extra.pop("kill_on_invalid_dep", None)
            if dep:
                extra.update(dependency=dep, kill_on_invalid_dep="yes")
            ex.update_parameters(slurm_additional_parameters=extra)
            with ex.batch():
                jobs = [ex.submit(make_job(r)) for r in group]
            for r, job in zip(group, jobs):
                record_submitted(launch_plan.record_dir, records[r.run_id], job, log)
                job_of[r.run_id] = records[r.run_id].job_id


class WaveRunner:
    """Local / debug submission: a run starts as soon as its baselines are done, at most `parallel` at
    once (local: one job per visible GPU by default, each on its own device); returns when all ended."""

    def __init__(self, ex: Any, executor: str, launch_plan: LaunchPlan, records: dict[str, Submitted],
                 make_job: Any, options: JobOptions, log: Any = print) -> None:
        self.ex, self.executor, self.plan, self.records = ex, executor, launch_plan, records
        self.make_job, self.log = make_job, log
        self.gpus = _local_gpus() if executor == "local" else 0
        self.parallel = 1 if executor == "debug" else max(1, options.array_parallelism or self.gpus or 1)
        self.ok, self.failed = set(launch_plan.done), set()
        self.waiting = [r for wave in launch_plan.waves for r in wave]
        self.running: dict[str, tuple[Any, int | None]] = {}  # run id -> (job, device)

    def run(self) -> None:
        while self.waiting or self.running:
            for r in list(self.waiting):
                self.start_if_ready(r)
            self.collect()
            if self.running or self.waiting:
                time.sleep(0.2 if self.running else 5.0)

    def start_if_ready(self, r: PlannedRun) -> None:
        """Start `r` when its baselines are done and a slot is free; block it when one failed."""
        outside = [d for d in r.needs if d in self.plan.in_flight and d not in self.ok | self.failed]
        if outside:  # in flight under another launch: look again
            for st in launch_status(self.plan.paper, self.plan.profile, self.plan.results, outside):
                if st.state in ("done", "failed"):
                    (self.ok if st.state == "done" else self.failed).add(st.run_id)
        bad = [d for d in r.needs if d in self.failed]
        if bad:
            self.waiting.remove(r)
            self.failed.add(r.run_id)
            record_blocked(self.plan.record_dir, self.records[r.run_id], bad, self.log)
        elif all(d in self.ok for d in r.needs) and len(self.running) < self.parallel:
            self.waiting.remove(r)
            device = self.pick_device()
            job = self.ex.submit(self.make_job(r))
            record_submitted(self.plan.record_dir, self.records[r.run_id], job, self.log)
            self.running[r.run_id] = (job, device)

    def pick_device(self) -> int | None:
        """Local: the least-loaded GPU (None without GPUs), set as the next job's only visible one."""
        if self.executor != "local":
            return None
        busy = [dev for _, dev in self.running.values()]
        device = min(range(self.gpus), key=busy.count) if self.gpus else None
        self.ex.update_parameters(gpus_per_node=1 if device is not None else 0,
                                  visible_gpus=(device,) if device is not None else ())
        return device

    def collect(self) -> None:
        """Move ended jobs to ok (their run is done) or failed (the job's record holds the error)."""
        for rid, (job, _) in list(self.running.items()):
            if not job.done():
                continue
            del self.running[rid]
            try:
                job.result()
            except Exception:  # the job's own record holds the error; keep going
                pass
            if store.is_done(store.run_dir(self.plan.results, self.plan.profile, rid)):
                self.ok.add(rid)
            else:
                self.failed.add(rid)
                error = _read_json(_job_record_path(self.plan.record_dir, rid)).get("error", "no error recorded")
                self.log(f"{rid}: job {job.job_id} failed: {error.splitlines()[0]} (log: {job.paths.stdout})")


def launch(
    configs: Sequence[RunConfig],
    executor: str = "slurm",
    results: str | Path = "results",
    options: JobOptions | None = None,
    *,
    simulate_preemption: bool = False,
    dry_run: bool = False,
    log: Any = print,
) -> list[Submitted]:
    """Submit every run of `configs` that is not done (one paper and profile per call).

    SLURM: returns once every job is queued. Local / debug: starts each run once its baselines are
    done and returns when every job has ended. `dry_run`: writes nothing and returns the runs it would submit (job id None,
    with their wave). Runs that are running or pending under an earlier job of the same executor
    are not submitted again; their dependents wait for that job.
    """
    options = options or JobOptions()
    configs = list(configs)
    if not configs:
        return []
    launch_plan = plan_launch(configs, executor, results, write=not dry_run, log=log)
    if dry_run:  # nothing written: the runs that would be submitted, by wave
        return [Submitted(r.run_id, executor, None, None, list(r.needs), str(r.config), wave=k)
                for k, wave in enumerate(launch_plan.waves) for r in wave]
    ex = make_executor(executor, launch_plan.record_dir / "jobs", options)
    records = record_pending(launch_plan, executor)

    def make_job(r: PlannedRun) -> RunJob:
        return RunJob(r.config, results, launch_plan.record_dir, simulate_preemption=simulate_preemption,
                      raise_user_errors=executor != "debug")  # debug: no post-mortem debugger for them

    if executor == "slurm":
        submit_slurm(ex, launch_plan, records, make_job, log)
    else:
        WaveRunner(ex, executor, launch_plan, records, make_job, options, log).run()
    return list(records.values())


def _local_gpus() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:
        return 0


# ---- status -----------------------------------------------------------------------------------
@dataclass
class RunStatus:
    """One run's state as `launch_status` reports it."""

    run_id: str
    state: str
    executor: str | None = None
    job_id: str | None = None
    log: str | None = None
    detail: str = ""


def _slurm_states(job_ids: Sequence[str]) -> dict[str, str]:
    """sacct's state of each job id (one call; {} where sacct is unavailable)."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    if not job_ids:
        return {}
    watcher = SlurmInfoWatcher()
    for jid in job_ids:
        watcher.register_job(jid)
    watcher.update()
    return {jid: watcher.get_state(jid, mode="cache") for jid in job_ids}


def _local_state(folder: Path, job_id: str) -> tuple[str, str]:
    """(state, detail) of a local job from its result pickle and its controller process."""
    from submitit.core.utils import JobPaths

    result = JobPaths(folder, job_id).result_pickle
    if result.exists():
        import pickle

        try:
            outcome, payload = pickle.loads(result.read_bytes())
        except Exception:
            return "failed", "unreadable result"
        return ("failed", str(payload).strip().splitlines()[-1] if outcome == "error" else "ended without done")
    if not _alive(job_id):
        return "failed", "job process gone without a result (killed?)"
    return "running", ""


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def slurm_state(sacct_state: str) -> str:
    """Our state for a sacct state of a run that is not done (``CANCELLED by 12`` -> failed)."""
    head = sacct_state.split()[0].upper() if sacct_state else "UNKNOWN"
    if head in _SLURM_RUNNING:
        return "running"
    if head in _SLURM_PENDING:
        return "pending"
    if head == "UNKNOWN":
        return "unknown"
    return "failed"


def launch_status(paper: str, profile: str, results: str | Path = "results",
                  run_ids: Sequence[str] | None = None) -> list[RunStatus]:
    """Per run: done / running / pending / failed (with job id and log) / not launched.

    `run_ids`: the runs to report (default: every run with a launch record), in that order."""
    rec_dir = launch_dir(results, profile, paper)
    if run_ids is None:
        run_ids = sorted(p.name[:-5] for p in (rec_dir / "runs").glob("*.json") if not p.name.endswith(".job.json"))
    run_ids = list(dict.fromkeys(run_ids))
    launched = {rid: _read_json(_launch_record_path(rec_dir, rid)) for rid in run_ids}
    jobs = {rid: _read_json(_job_record_path(rec_dir, rid)) for rid in run_ids}
    slurm_ids = [r["job_id"] for rid, r in launched.items() if r.get("executor") == "slurm" and r.get("job_id")
                 and not store.is_done(store.run_dir(results, profile, rid))]
    sacct = _slurm_states(slurm_ids)
    out = []
    for rid in run_ids:
        rec, job = launched[rid], jobs[rid]
        st = RunStatus(rid, "not launched", rec.get("executor"), rec.get("job_id"), rec.get("log"))
        if store.is_done(store.run_dir(results, profile, rid)):
            st.state = "done"
        elif not rec:
            pass
        elif rec.get("blocked_by"):
            st.state, st.detail = "failed", f"baseline failed: {', '.join(rec['blocked_by'])}"
        elif not rec.get("job_id"):
            st.state, st.detail = "pending", "waits for " + (", ".join(rec.get("needs") or []) or "submission")
        elif rec["executor"] == "slurm":
            raw = sacct.get(rec["job_id"], "UNKNOWN")
            st.state, st.detail = slurm_state(raw), raw
            if st.state == "unknown":  # no sacct: fall back on what the job wrote itself
                st.state = {"running": "running", "failed": "failed", "finished": "failed"}.get(job.get("state"), "pending")
                st.detail = "sacct unavailable"
        elif rec["executor"] == "local":
            st.state, st.detail = _local_state(rec_dir / "jobs", rec["job_id"])
        elif job.get("state") in ("running", "requeued"):  # debug: in the launching process
            alive = job.get("host") == socket.gethostname() and _alive(job.get("pid"))
            st.state, st.detail = ("running", "") if alive else ("failed", "launching process gone")
        else:
            st.state = "failed" if job else "pending"
        if st.state == "failed" and job.get("error") and not st.detail.startswith("baseline"):
            st.detail = job["error"].splitlines()[0]
        if job.get("attempts", 0) > 1:
            st.detail = (st.detail + f" (attempt {job['attempts']})").strip()
        out.append(st)
    return out


def format_status(rows: Sequence[RunStatus]) -> str:
    """A table: state, run id, job id, log (and a count per state)."""
    w_run = max([len("run")] + [len(r.run_id) for r in rows]) + 2
    w_job = max([len("job")] + [len(r.job_id or "-") for r in rows]) + 2
    lines = [f"{'state':<14}{'run':<{w_run}}{'job':<{w_job}}log"]
    for r in rows:
        extra = f"  [{r.detail}]" if r.detail and r.state != "done" else ""
        lines.append(f"{r.state:<14}{r.run_id:<{w_run}}{r.job_id or '-':<{w_job}}{r.log or '-'}{extra}")
    counts = {s: sum(r.state == s for r in rows) for s in STATES if any(r.state == s for r in rows)}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()) or "no runs")
    return "\n".join(lines)
