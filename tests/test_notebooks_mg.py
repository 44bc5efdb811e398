"""notebooks/mg_train.ipynb: committed without outputs, parameterised, and it trains through papermill
exactly what the library trains."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from notebook_checks import clean_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "mg_train.ipynb"


def test_notebook_is_committed_clean_and_parameterised():
    names, source = clean_notebook(NOTEBOOK)
    assert {"configs", "group", "profile", "results", "executed_as"} <= names
    assert "train_runs(" in source  # thin: training is one library call, the same one the CLI makes


# a kernel start plus two tiny runs: ~20 s on an idle 2-core machine; kept in the fast suite so
# `make test` executes the training notebook the way `make mg` does
def test_notebook_trains_through_papermill(tmp_path):
    import papermill as pm

    from rightfocus.data.synthetic import make
    from rightfocus.runs import store
    from rightfocus.runs.config import RunConfig

    voc = make("voc2007", tmp_path / "voc", seed=0, n_train=6, n_val=4, n_test=4, min_size=24, max_size=24)
    base = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="vanilla", arch="tiny", epochs=1,
                     lr=1e-2, batch_size=6, image_size=16)
    guided = replace(base, method="ixg", tap="input", loss="l1", lam=0.1, init_from=base.run_id)
    results, out = tmp_path / "results", tmp_path / "executed.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOK.parent),
                        parameters={"configs": [guided.to_dict(), base.to_dict()], "results": str(results),
                                    "executed_as": str(out), "progress": False, "show": 2})
    for cfg in (base, guided):
        rdir = store.run_dir(results, "demo", cfg.run_id)
        assert store.is_done(rdir)
        assert (rdir / "notebook.txt").read_text().strip() == str(out)
    executed = nbformat.read(out, as_version=4)
    assert any(o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", []))
    summary = json.loads((store.run_dir(results, "demo", guided.run_id) / "done").read_text())
    assert summary["init_from_resolved"] == base.run_id
