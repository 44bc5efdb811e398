"""Paper-profile runs train through papermill: the per-run recipe's notebook
execution and `rightfocus train CONFIG` produce identical metrics for the same small runs, and the
executed notebook lands in the run's folder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from rightfocus.cli import main as cli
from rightfocus.runs import store
from rightfocus.runs.config import RunConfig, dump_config
from rightfocus.experiments.makefile import EXECUTED_NOTEBOOK, PAPERS, run_params

ROOT = Path(__file__).resolve().parents[1]
#: columns that measure time, not results
_TIMES = {"epoch_time_s"}


def _via_notebook(cfg: RunConfig, results: Path) -> Path:
    """What the generated recipe does: papermill with the run's parameters, output in the run folder."""
    import papermill as pm

    rdir = store.run_dir(results, cfg.profile, cfg.run_id)
    rdir.mkdir(parents=True, exist_ok=True)
    params = run_params(cfg, results)
    pm.execute_notebook(str(ROOT / PAPERS[cfg.paper].notebook), params["executed_as"], kernel_name="python3",
                        progress_bar=False, parameters=params)
    return rdir


def _via_cli(cfg: RunConfig, results: Path, tmp: Path) -> Path:
    path = tmp / f"{cfg.run_id}.yaml"
    path.write_text(dump_config(cfg))
    assert cli(["train", str(path), "--results", str(results)]) == 0
    return store.run_dir(results, cfg.profile, cfg.run_id)


def _rows(rdir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in _TIMES} for r in store.read_metrics(rdir)]


@pytest.mark.slow
def test_mg_notebook_and_cli_give_identical_metrics(tmp_path):
    from rightfocus.data.synthetic import make

    voc = make("voc2007", tmp_path / "voc", seed=0, n_train=6, n_val=4, n_test=4, min_size=24, max_size=24)
    base = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=2,
                     lr=1e-2, batch_size=4, image_size=16, profile="rehearsal", threads=1)
    guided = replace(base, method="ixg", tap="input", loss="energy", lam=0.1, init_from=[base.run_id])
    a, b = tmp_path / "nb", tmp_path / "cli"
    for cfg in (base, guided):
        rdir = _via_notebook(cfg, a)
        assert store.is_done(rdir)
        executed = nbformat.read(rdir / EXECUTED_NOTEBOOK, as_version=4)
        assert any(o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", []))
        assert (rdir / "notebook.txt").read_text().strip() == str(rdir / EXECUTED_NOTEBOOK)
        other = _via_cli(cfg, b, tmp_path)
        assert _rows(rdir) == _rows(other) and len(_rows(rdir)) > 0
        done_a, done_b = (json.loads((d / "done").read_text()) for d in (rdir, other))
        for key in ("selected_epoch", "front_epochs", "selected_val"):
            assert done_a[key] == done_b[key]


@pytest.mark.slow
def test_aim_notebook_and_cli_give_identical_metrics(tmp_path):
    from rightfocus.data.synthetic import make
    from rightfocus.experiments.aim_grids import make_config

    cub = make("cub", tmp_path / "cub", seed=0, per_class=4, num_classes=2)
    cfg = make_config("demo", "cub", "convnext_tiny", aim=True, stage=2, tau=0.25, anneal_epochs=1, fixed_images=2)
    cfg = replace(cfg, data_root=str(cub), epochs=2, batch_size=4, profile="rehearsal")
    rdir = _via_notebook(cfg, tmp_path / "nb")
    other = _via_cli(cfg, tmp_path / "cli", tmp_path)
    assert (rdir / EXECUTED_NOTEBOOK).is_file() and store.is_done(rdir) and store.is_done(other)
    assert _rows(rdir) == _rows(other) and len(_rows(rdir)) > 0
    done_a, done_b = (json.loads((d / "done").read_text()) for d in (rdir, other))
    same = [k for k in done_a if "time" not in k and not k.endswith("_at")]
    assert {k: done_a[k] for k in same} == {k: done_b.get(k) for k in same}
