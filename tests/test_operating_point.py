"""Operating-point checks (`figures.operating_point`) on small fake results: AIM runs whose final
validation masks sit at tau pass, runs far from it fail and are flagged (marker + footnote) in the
tables that use them; model-guidance runs pass only when the localisation loss falls and EPG moves.
Also: rendering twice from the same results writes byte-identical tracked outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from rightfocus.runs import store
from rightfocus.figures import render_all
from rightfocus.figures import operating_point as op

sys.path.insert(0, str(Path(__file__).parent))
from fake_results import write_fake_results  # noqa: E402
from test_figures_aim import write_fake_aim_results  # noqa: E402


def _aim_rows(active_last: float, tau: float | None = 0.25, kind: str = "aim", done: bool = True) -> pd.DataFrame:
    rows = [{"run_id": "r", "paper": "aim", "model_kind": kind, "extra.tau": tau, "done": done, "epoch": e,
             "split": "val", "mask_active": a} for e, a in ((1, 0.9), (2, 0.6), (3, active_last))]
    rows.append({"run_id": "r", "paper": "aim", "model_kind": kind, "extra.tau": tau, "done": done, "epoch": 2,
                 "split": "test", "mask_active": 0.6})  # the selected epoch's test row is not what is checked
    return pd.DataFrame(rows)


def test_aim_check_uses_the_last_validation_epoch_and_the_tolerance():
    assert op.aim_check(_aim_rows(0.25)).ok
    assert op.aim_check(_aim_rows(0.25 + op.AIM_TOLERANCE)).ok
    miss = op.aim_check(_aim_rows(0.31))
    assert not miss.ok and "31.0%" in miss.measured and "epoch 3" in miss.measured
    assert not op.aim_check(_aim_rows(0.19)).ok
    assert op.aim_check(_aim_rows(0.9, tau=None)) is None  # no annealing: nothing to reach
    assert op.aim_check(_aim_rows(0.9, kind="vanilla")) is None
    assert op.checks(_aim_rows(0.9, done=False)) == {}  # unfinished runs are not judged


def _mg_rows(loc: tuple[float, float], epg: tuple[float, float, float]) -> pd.DataFrame:
    rows = []
    for e, (l, g) in enumerate(zip((None, *loc), epg)):
        rows.append({"run_id": "g", "paper": "mg", "is_baseline": False, "lam": 0.1, "config_tap": "input",
                     "config_method": "bcos", "split": "val", "tap": "input", "method": "bcos", "epoch": e,
                     "train_loc": l, "epg": g})
        rows.append({**rows[-1], "tap": "final", "epg": 0.0})  # another evaluated tap: ignored
    return pd.DataFrame(rows)


def test_mg_check_needs_a_falling_loss_and_a_moved_epg():
    assert op.mg_check(_mg_rows((1.0, 0.5), (0.30, 0.32, 0.40))).ok
    rising = op.mg_check(_mg_rows((0.5, 1.0), (0.30, 0.32, 0.40)))
    assert not rising.ok and "0.5 -> 1" in rising.measured
    still = op.mg_check(_mg_rows((1.0, 0.5), (0.30, 0.30, 0.302)))
    assert not still.ok and "30.0 -> 30.2" in still.measured
    base = _mg_rows((1.0, 0.5), (0.3, 0.3, 0.4)).assign(is_baseline=True, lam=0.0)
    assert op.mg_check(base) is None


@pytest.fixture(scope="module")
def aim_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("opaim")
    write_fake_aim_results(root / "results")
    return root


def test_fake_aim_tree_bottom_up_runs_miss_and_top_down_runs_reach(aim_tree):
    m = store.load_metrics(aim_tree / "results", "demo", "aim-bottomup")
    checks = op.checks(m)
    cfg = {rid: store.load_config(store.run_dir(aim_tree / "results", "demo", rid)) for rid in checks}
    # the fake tree: top-down masks end at tau, bottom-up masks fully active (1.0)
    assert {r for r, c in checks.items() if not c.ok} == {r for r, c in cfg.items()
                                                          if c.extra.get("direction") == "bottom_up"}
    assert all(c.ok for r, c in checks.items() if cfg[r].extra.get("direction") != "bottom_up")


def test_missed_runs_are_flagged_in_tables_and_claims(aim_tree):
    out = aim_tree / "fig"
    render_all("demo", aim_tree / "results", only=["aim.tab15", "aim.tab1", "aim.claims"], out=out)
    tab15 = (out / "aim.tab15.md").read_text()
    assert f"Operating point: {op.MARK}" in tab15  # the footnote
    missed = [r for r, c in op.checks(store.load_metrics(aim_tree / "results", "demo", "aim-bottomup")).items()
              if not c.ok]
    assert missed and any(r in tab15 for r in missed)
    frame = pd.read_csv(out / "aim.tab15.csv")
    marked = frame[frame["model"].str.endswith(op.MARK)]["model"].tolist()
    assert marked and all("ottom" in m or "BU" in m or "[" in m for m in marked), marked  # the marker
    assert not frame[frame["model"].str.contains("ConvNeXt", case=False)]["model"].str.endswith(op.MARK).any()
    assert "Operating point:" not in (out / "aim.tab1.md").read_text()  # aim-main: every run reaches it
    claims = pd.read_csv(out / "aim.claims.csv")
    sparse = claims[claims["claim"].str.startswith("Top-down masks are sparser")].iloc[0]
    assert sparse["operating point"].startswith(op.MARK) and sparse["claim"].endswith(op.MARK)
    epg = claims[claims["claim"].str.startswith("AIM improves GradCAM EPG")].iloc[0]
    assert epg["operating point"].startswith("all ")
    failing = claims[claims["verdict"] == "does not hold"]
    assert len(failing) and failing["measured reason (if it does not hold)"].notna().all()


def test_mg_claims_carry_an_operating_point_column(tmp_path):
    results = tmp_path / "results"
    write_fake_results(results, groups=["voc-main"])
    render_all("demo", results, only=["mg.claims"], out=tmp_path / "fig")
    claims = pd.read_csv(tmp_path / "fig" / "mg.claims.csv")
    r3 = claims[claims["claim"].str.startswith("R3")].iloc[0]
    assert r3["operating point"].startswith("all ")  # fake guided runs: loss falls, EPG moves


TRACKED = ("csv", "md", "png")


def test_rendering_twice_from_the_same_results_is_byte_identical(tmp_path):
    results = tmp_path / "results"
    write_fake_results(results, groups=["voc-main", "voc-layers"])
    write_fake_aim_results(results)
    ids = ["mg.claims", "mg.fig8", "aim.claims", "aim.tab15"]
    a, b = tmp_path / "a", tmp_path / "b"
    render_all("demo", results, only=ids, out=a)
    render_all("demo", results, only=ids, out=b)
    files = sorted(p.name for p in a.iterdir() if p.suffix.lstrip(".") in TRACKED)
    assert {"mg.claims.csv", "mg.claims.md", "mg.fig8.png", "aim.claims.md"} <= set(files)
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    # the measured speed-ups go to the untracked results folder, not into the tracked outputs
    assert (results / "demo" / "timings" / "mg.fig8.csv").exists()
