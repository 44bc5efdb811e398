"""How long `make demo` takes on a fresh clone, and where the time goes (the demo's budget: 12 min on
2 cores after `make setup`).

Clones the checkout into a temporary folder (committed files only: what a new user gets), runs
`make demo` there with this checkout's virtual environment (its stamp touched first, so nothing is
reinstalled), and writes one JSON: wall, user and system CPU seconds of the whole tree of processes,
the hypervisor's steal time over the run (/proc/stat: CPU time the VM wanted but did not get; on a
shared host it can take a third of two cores), the wall time without it at most (wall - steal
core-seconds / cores: steal costs at least that much wall time, exactly that while every core is busy),
each executed notebook's duration, and whether `git status` is clean afterwards.

    python benchmarks/demo_timing.py --out benchmarks/out        # ~10 min on 2 idle cores, the machine to itself

Not part of `make bench` (it is the whole demo). Numbers are measurements, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_times() -> dict[str, int]:
    """Jiffies of all CPUs together from /proc/stat (user ... steal), or {} where there is none."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return {}
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return {n: int(v) for n, v in zip(names, fields)}


def notebook_durations(results: Path) -> dict[str, float]:
    out = {}
    for path in sorted((results / "demo" / "notebooks").glob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        out[path.stem] = round(float(meta.get("duration") or 0.0), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/out", help="folder for demo_timing.json")
    ap.add_argument("--venv", default=str(ROOT / ".venv"), help="virtual environment to run in (made by `make setup`)")
    ap.add_argument("--keep", action="store_true", help="keep the clone (its results/ and figures/)")
    args = ap.parse_args()
    venv = Path(args.venv).resolve()
    if not (venv / "bin" / "python").exists():
        sys.exit(f"no virtual environment at {venv}: run `make setup` first (or pass --venv)")
    work = Path(tempfile.mkdtemp(prefix="rightfocus-demo-"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    (venv / ".stamp").touch()  # the clone's constraints.txt is newer than the stamp: no reinstall inside
    env = {**os.environ, "PYTHONPATH": str(clone / "lib")}  # the clone's code, not the checkout's
    hz = os.sysconf("SC_CLK_TCK")
    cores = os.cpu_count() or 1
    before, rusage0, t0 = cpu_times(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    proc = subprocess.run(["make", "demo", f"VENV={venv}"], cwd=clone, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    rusage1, after = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_times()
    steal = (after.get("steal", 0) - before.get("steal", 0)) / hz
    status = subprocess.run(["git", "status", "--short"], cwd=clone, capture_output=True, text=True).stdout
    report_path = clone / "figures" / "demo" / "render_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    record = {
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip(),
        "exit_status": proc.returncode,
        "wall_s": round(wall, 1),
        "user_s": round(rusage1.ru_utime - rusage0.ru_utime, 1),
        "system_s": round(rusage1.ru_stime - rusage0.ru_stime, 1),
        "cores": cores,
        "steal_core_s": round(steal, 1),
        "steal_share": round(steal / (wall * cores), 3) if wall else None,
        # steal costs at least its core-seconds spread over the cores (exactly that while all are busy)
        "wall_without_steal_s": round(wall - steal / cores, 1),
        "budget_s": 12 * 60,
        "ids_rendered": sum(v == "rendered" for v in report.values()),
        "ids_placeholder": sum(v != "rendered" for v in report.values()),
        "git_status_clean": status.strip() == "",
        "notebooks_s": notebook_durations(clone / "results"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "stderr_tail": proc.stderr[-2000:] if proc.returncode else "",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_timing.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("notebooks_s", "stderr_tail")}, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
