"""AIM renderers: every aim.* inventory id is registered and renders from a tiny results tree.

The tree is fake but has exactly the layout the AIM loop writes (config.yaml from the real demo grids,
metrics.jsonl rows, done, per_sample.csv, examples*.pt, masks/epoch_<e>.pt); test_aim_training.py
checks that a real run writes that layout. Table numbers are checked against the paper's printed
numbers and against hand-set values in the fake tree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rightfocus.runs import store
from rightfocus.experiments.aim_grids import GROUPS, group_configs
from rightfocus.figures import FIGURES, render_all
from rightfocus.figures.aim_common import AIM_IDS
from rightfocus.figures.operating_point import MARK

INVENTORY = Path(__file__).resolve().parents[2] / "shared" / "INVENTORY.md"  # beside the clone, when present
SIZE = 16
N_TEST = 6


def _fake_metrics(cfg) -> dict:
    """Structured made-up test metrics: AIM beats the baseline, lower tau -> higher EPG."""
    e = cfg.extra
    aim = cfg.model_kind == "aim"
    tau = e.get("tau")
    epg = 0.4 + (0.3 - 0.5 * (tau if tau is not None else 0.5) if aim else 0.0)
    acc = 0.7 + (0.1 if aim else 0.0) - (0.05 if e.get("direction") == "bottom_up" else 0.0)
    active = 1.0 if e.get("direction") == "bottom_up" else (tau or 0.7) if aim else None
    return {"accuracy": acc, "epg": epg, "active": active}


def _examples(n_stages: int, aim: bool, gen: torch.Generator) -> dict:
    img = torch.rand(N_TEST, 3, SIZE, SIZE, generator=gen)
    obj = torch.zeros(N_TEST, SIZE, SIZE)
    obj[:, 4:12, 4:12] = 1
    masks = [torch.rand(N_TEST, 1, SIZE // 2 ** (k + 1), SIZE // 2 ** (k + 1), generator=gen) > 0.5
             for k in reversed(range(n_stages))] if aim else []
    return {"positions": list(range(N_TEST)), "index": torch.arange(N_TEST), "image": img, "object": obj,
            "label": torch.zeros(N_TEST, dtype=torch.long), "pred": torch.zeros(N_TEST, dtype=torch.long),
            "gradcam": torch.rand(N_TEST, SIZE, SIZE, generator=gen), "epg": torch.rand(N_TEST, generator=gen),
            "stage_masks": masks, "stages": list(range(n_stages, 0, -1))[:n_stages] if aim else [],
            "merged": (sum(m.float().repeat_interleave(SIZE // 2 // m.shape[-1], -1)
                           .repeat_interleave(SIZE // 2 // m.shape[-2], -2) for m in masks) if aim else None)}


def write_fake_aim_results(results: Path, profile: str = "demo") -> dict[str, str]:
    """Every demo AIM group's runs in the results layout; returns {run_id: dataset}."""
    gen = torch.Generator().manual_seed(0)
    written: dict[str, str] = {}
    for group in GROUPS:
        configs = group_configs(group, profile)
        for cfg in configs:
            rdir = store.run_dir(results, profile, cfg.run_id)
            if cfg.run_id in written:
                continue
            written[cfg.run_id] = cfg.dataset
            store.write_config(rdir, cfg)
            m = _fake_metrics(cfg)
            wb = cfg.dataset.startswith("waterbirds")
            base = {"tap": "aim" if cfg.model_kind == "aim" else "final", "f1": None, "map": None, "iou": None,
                    "iou_threshold": None, "onobj_epg": None, "epoch_time_s": None,
                    "group_acc": [m["accuracy"]] * 4 if wb else None,
                    "worst_group_acc": m["accuracy"] - 0.1 if wb else None,
                    "mask_active": m["active"], "stage_active": None, "merged_active": None}
            rows = [{**base, "epoch": e, "split": "val", "method": None, "tap": None, "epg": None,
                     "accuracy": m["accuracy"] - 0.1 + 0.02 * e, "checkpoint": "epoch_3.pt" if e == 3 else None}
                    for e in (1, 2, 3)]
            rows.append({**base, "epoch": 3, "split": "test", "method": "gradcam", "epg": m["epg"],
                         "accuracy": m["accuracy"], "checkpoint": "epoch_3.pt"})
            if cfg.extra.get("guided_eval"):
                for meth in ("guided_gradcam", "guided_backprop"):
                    rows.append({**base, "epoch": 3, "split": "test", "method": meth, "epg": m["epg"] - 0.1,
                                 "accuracy": m["accuracy"], "checkpoint": "epoch_3.pt"})
            if cfg.extra.get("shifted_offset") is not None:
                rows.append({**base, "epoch": 3, "split": "test_shifted", "method": "gradcam",
                             "epg": m["epg"], "accuracy": m["accuracy"] - 0.1, "checkpoint": "epoch_3.pt"})
            store.write_metrics(rdir, rows)
            aim = cfg.model_kind == "aim"
            n_st = 0 if not aim else (len(cfg.extra["blocks"]) if cfg.extra.get("direction") == "bottom_up"
                                      else 4 - int(cfg.extra["stage"]))
            ex = _examples(n_st, aim, gen)
            store.atomic_torch_save(ex, rdir / "examples.pt")
            if cfg.extra.get("shifted_offset") is not None:
                store.atomic_torch_save(ex, rdir / "examples_shifted.pt")
            if aim:
                store.atomic_torch_save({"positions": ex["positions"], "image": ex["image"]}, rdir / "masks" / "images.pt")
                for e in (0, 1, 2, 3):
                    store.atomic_torch_save({"epoch": e, "stage_masks": ex["stage_masks"], "stages": ex["stages"],
                                             "merged": ex["merged"]}, rdir / "masks" / f"epoch_{e}.pt")
            per = pd.DataFrame({"index": range(N_TEST), "label": 0, "pred": 0, "correct": 1,
                                "group": 0, "epg_gradcam": np.linspace(0, 1, N_TEST) * m["epg"]})
            per.to_csv(rdir / "per_sample.csv", index=False)
            store.write_done(rdir, {"selected_epoch": 3, "front_epochs": [3]})
        store.write_group(results, profile, group, [c.run_id for c in configs])
    return written


#: rendered in the fast tests (drawing all ~50 ids takes minutes on 2 CPU cores: see the slow test)
FAST_IDS = ["aim.tab*", "aim.claims", "aim.study", "aim.fig5", "aim.fig7", "aim.fig9"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("aimfig")
    write_fake_aim_results(root / "results")
    return root


@pytest.fixture(scope="module")
def rendered(tree):
    import rightfocus.models.aim as aim_models

    real = aim_models.measure_table6
    aim_models.measure_table6 = lambda **kw: real(**{**kw, "count_macs": False})  # parameters only: fast
    try:
        out = tree / "figures"
        paths = render_all("demo", tree / "results", only=FAST_IDS, out=out)
    finally:
        aim_models.measure_table6 = real
    return out, paths


def test_every_inventory_aim_id_is_registered():
    inv_ids = set(AIM_IDS)
    if INVENTORY.exists():
        text = INVENTORY.read_text()
        found = set(re.findall(r"\baim\.(?:fig\d+|tab\d+|study)\b", text))
        found |= {f"aim.fig{i}" for i in range(13, 25)}  # "aim.fig13 .. aim.fig24" is one row
        found |= {"aim.fig31", "aim.fig32"}
        assert found <= inv_ids | {"aim.claims"}
        inv_ids |= found
    missing = sorted(i for i in inv_ids if i not in FIGURES)
    assert not missing, f"unregistered AIM ids: {missing}"
    for fig_id, (kind, _) in AIM_IDS.items():
        assert FIGURES[fig_id].kind == kind


def _check_rendered(out: Path, paths, ids) -> None:
    assert not paths.placeholders, paths.placeholders
    report = json.loads((out / "render_report.json").read_text())
    for fig_id in ids:
        kind = AIM_IDS[fig_id][0]
        assert report[fig_id] == "rendered"
        ext = ("png", "pdf") if kind == "figure" else ("csv", "md")
        for e in ext:
            assert (out / f"{fig_id}.{e}").stat().st_size > 0


def test_fast_subset_renders(rendered):
    out, paths = rendered
    ids = [i for i in AIM_IDS if any(__import__("fnmatch").fnmatch(i, p) for p in FAST_IDS)]
    _check_rendered(out, paths, ids)
    t6 = pd.read_csv(out / "aim.tab6.csv")
    # parameter counts of our models beside Table 6's: within 0.5 M of the paper's (a check that needs no data)
    assert (t6["params diff"].abs() < 0.5).all(), t6


@pytest.mark.slow
def test_every_aim_id_renders(tree):
    out = tree / "figures_all"
    _check_rendered(out, render_all("demo", tree / "results", only=["aim.*"], out=out), list(AIM_IDS))


def test_tables_put_paper_numbers_beside_ours(rendered):
    out, _ = rendered
    t1 = pd.read_csv(out / "aim.tab1.csv")
    base = t1[t1["model"] == "ConvNeXt-t"].iloc[0]
    # paper's printed number, and ours from the fake tree: worst-group = accuracy - 0.1 = 60 %
    assert base["waterbirds95_wg paper"] == 81.6
    assert base["waterbirds95_wg ours"] == pytest.approx(60.0)
    assert base["waterbirds95_wg diff"] == pytest.approx(60.0 - 81.6)
    aim = t1[t1["model"] == "ConvNeXt-t+AIM[1, 25%]"].iloc[0]
    assert aim["waterbirds95_epg ours"] == pytest.approx(100 * (0.4 + 0.3 - 0.125))
    # a variant the demo does not train stays empty rather than borrowing another run's numbers
    assert np.isnan(t1[t1["model"] == "ConvNeXt-t+AIM[1, 35%]"].iloc[0]["waterbirds95_wg ours"])
    t10 = pd.read_csv(out / "aim.tab10.csv")
    dro = t10[t10["model"].str.startswith("DRO")].iloc[0]
    assert dro["waterbirds95_wg paper"] == 91.4 and np.isnan(dro["waterbirds95_wg ours"])
    assert "other paper" in dro["source"]


def test_sparsity_and_shifted_columns(rendered):
    out, _ = rendered
    t15 = pd.read_csv(out / "aim.tab15.csv")
    # the fake bottom-up masks stay fully active, so that row carries the operating-point marker
    bu = t15[t15["model"] == "Bottom-up ([1, 2, 3], 25%)" + MARK].iloc[0]
    td = t15[t15["model"] == "ConvNext+AIM (1, 25%)"].iloc[0]
    assert bu["sparsity ours"] == pytest.approx(100.0) and td["sparsity ours"] == pytest.approx(25.0)
    t3 = pd.read_csv(out / "aim.tab3.csv")
    assert t3.iloc[0]["shifted_cub_acc ours"] == pytest.approx(60.0)


def test_claims_and_study_are_labelled(rendered):
    out, _ = rendered
    claims = pd.read_csv(out / "aim.claims.csv")
    from rightfocus.figures.operating_point import CLAIM_COLUMNS

    # both claims tables: their columns in one shared order (MG's test checks its own)
    assert list(claims.columns) == [c for c in CLAIM_COLUMNS if c in claims.columns]
    assert list(claims.columns[:4]) == ["claim", "verdict", "ours", "paper"]
    verdict = dict(zip(claims["claim"].str.rstrip(MARK), claims["verdict"]))
    assert verdict["A lower active-area threshold gives higher EPG"] == "holds"
    assert verdict["Top-down masks are sparser than bottom-up ones (>= 10 points fewer active elements)"] == "holds"
    study = (out / "aim.study.md").read_text()
    assert "SIMULATED" in study
    assert "70.7" in study


def test_missing_group_gives_named_placeholder(tmp_path):
    paths = render_all("demo", tmp_path / "empty", only=["aim.tab11", "aim.fig9"], out=tmp_path / "f")
    assert "aim.tab11" in paths.placeholders and "aim-threshold" in paths.placeholders["aim.tab11"]
    assert "make aim" in paths.placeholders["aim.tab11"]
    assert "aim.fig9" not in paths.placeholders  # config-only figure renders without results
