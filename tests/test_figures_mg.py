"""Figure registry and model-guidance renderers: every inventory id is registered and renders (a
real figure or an explicit placeholder), the Pareto selection and the Fig. 5 regions match
hand-worked points, tables carry the paper's printed numbers beside ours, and the claims table
follows the results (it can say a claim does not hold)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from fake_results import write_checkpoints, write_fake_results  # noqa: E402

from rightfocus.experiments import paper_numbers_mg as paper  # noqa: E402
from rightfocus.runs import store  # noqa: E402
from rightfocus.figures import FIGURES, register, render_all, style  # noqa: E402
from rightfocus.figures.inventory import MG_EXTRA_IDS, MG_IDS, parse_inventory  # noqa: E402
from rightfocus.figures.mg_common import front_2d, representative_checkpoint, selected_test_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_INVENTORY = REPO.parent / "shared" / "INVENTORY.md"


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("fig") / "results"
    write_fake_results(results, groups=["voc-main", "waterbirds"])
    return results


# ---- registry ------------------------------------------------------------------------------------

def test_every_mg_inventory_id_is_registered_with_its_kind_and_groups():
    for fig_id, (kind, groups) in {**MG_IDS, **MG_EXTRA_IDS}.items():
        assert fig_id in FIGURES, f"{fig_id} has no renderer"
        assert FIGURES[fig_id].kind == kind, fig_id
        if fig_id in MG_IDS:
            assert FIGURES[fig_id].groups == groups, fig_id
    registered_mg = {i for i in FIGURES if i.startswith("mg.")}
    assert registered_mg == set(MG_IDS) | set(MG_EXTRA_IDS)


@pytest.mark.skipif(not SHARED_INVENTORY.exists(), reason="the design inventory of paper ids is not beside the clone")
def test_committed_id_list_agrees_with_the_shared_inventory():
    parsed = parse_inventory(SHARED_INVENTORY.read_text())
    mg = {k: v for k, v in parsed.items() if k.startswith("mg.")}
    assert set(mg) == set(MG_IDS)
    # groups we read beyond the inventory's row, each for a reason stated in the paper
    beyond = {"mg.figA4": ("coco-dilation",)}  # MG supp. A.2: dilated boxes shown for COCO as well as VOC
    for fig_id, runs in mg.items():
        groups = tuple(g.strip() for g in runs.split(",") if g.strip() not in ("none", "config"))
        assert groups + beyond.get(fig_id, ()) == MG_IDS[fig_id][1], fig_id
    # the parser expands ranges such as `aim.fig13 .. aim.fig24`
    assert {"aim.fig13", "aim.fig24", "aim.fig31", "aim.fig32"} <= set(parsed)


def test_register_rejects_bad_kinds_and_double_registration():
    with pytest.raises(ValueError, match="kind"):
        register("mg.test_bad", kind="chart")
    with pytest.raises(ValueError, match="twice"):
        register("mg.fig5a")(lambda ctx: None)


def test_unknown_only_id_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="mg.nope"):
        render_all("demo", tmp_path, only=["mg.nope"], out=tmp_path / "out")


def test_parts_split_the_ids_and_share_one_report(tmp_path):
    """Two `part`s (as `make demo` runs them side by side) render every selected id exactly once into one
    shared render_report.json; a bad part is refused."""
    only = ["mg.tab*", "mg.fig4"]  # no results here: each id renders as a placeholder (cheap)
    first = render_all("demo", tmp_path / "empty", only=only, out=tmp_path / "out", part=(1, 2))
    second = render_all("demo", tmp_path / "empty", only=only, out=tmp_path / "out", part=(2, 2))
    stems = [{Path(p).name.split(".")[0] + "." + Path(p).name.split(".")[1] for p in part
              if Path(p).name != "render_report.json"} for part in (first, second)]
    assert stems[0].isdisjoint(stems[1]) and all(stems)
    assert stems[0] | stems[1] == {"mg.tab1", "mg.tabC1", "mg.tabD1", "mg.tabD2", "mg.fig4"}
    report = json.loads((tmp_path / "out" / "render_report.json").read_text())
    assert set(report) == stems[0] | stems[1]
    with pytest.raises(ValueError, match="part 3/2"):
        render_all("demo", tmp_path, only=only, out=tmp_path / "out", part=(3, 2))


# ---- Pareto regions and selection on hand-made points --------------------------------------------

def test_regions_relative_to_the_baseline_are_strict():
    assert style.region_of(0.8, 0.6, 0.7, 0.5) == "dominating"
    assert style.region_of(0.6, 0.4, 0.7, 0.5) == "dominated"
    assert style.region_of(0.8, 0.4, 0.7, 0.5) == "tradeoff"
    assert style.region_of(0.7, 0.6, 0.7, 0.5) == "tradeoff"  # ties are not strict domination


def test_shading_spans_the_two_quadrants_of_the_baseline():
    fig, ax = plt.subplots()
    ax.scatter([60, 90], [20, 70])
    style.shade_baseline_regions(ax, 75.0, 40.0)
    (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
    rects = {matplotlib.colors.to_hex(p.get_facecolor()): p for p in ax.patches}
    green, grey = rects[style.DOMINATING_COLOR], rects[style.DOMINATED_COLOR]
    assert green.get_xy() == (75.0, 40.0)
    assert green.get_width() == pytest.approx(x_hi - 75.0) and green.get_height() == pytest.approx(y_hi - 40.0)
    assert grey.get_xy() == (x_lo, y_lo)
    assert grey.get_width() == pytest.approx(75.0 - x_lo) and grey.get_height() == pytest.approx(40.0 - y_lo)
    plt.close(fig)


def test_front_line_keeps_the_2d_non_dominated_points_sorted_by_x():
    pts = np.array([[3.0, 1.0], [1.0, 5.0], [1.5, 3.0], [2.0, 4.0], [2.0, 2.0]])
    assert front_2d(pts).tolist() == [1, 3, 0]


def _hand_frame() -> pd.DataFrame:
    """Two lambdas of one configuration; val (f1, epg, iou) per epoch chosen so that the pooled
    front is {(a, 2), (b, 1), (b, 3)}: a/1 is dominated by b/1, a/3 by a/2; epoch 0 is the baseline."""
    val = {("a", 0): (0.80, 0.30, 0.20), ("a", 1): (0.75, 0.40, 0.25), ("a", 2): (0.79, 0.45, 0.30),
           ("a", 3): (0.74, 0.44, 0.28), ("b", 0): (0.80, 0.30, 0.20), ("b", 1): (0.76, 0.50, 0.26),
           ("b", 3): (0.70, 0.60, 0.35)}
    rows = []
    for (run, epoch), (f1, epg, iou) in val.items():
        base = dict(run_id=run, epoch=epoch, tap="input", method="bcos", config_tap="input",
                    config_method="bcos", dataset="voc2007", task=None, model_kind="bcos", arch="tiny",
                    loss="energy", annotation_fraction=1.0, dilation=0.0, is_baseline=False,
                    lam={"a": 0.1, "b": 0.2}[run], checkpoint=f"epoch_{epoch}.pt")
        rows.append({**base, "split": "val", "f1": f1, "epg": epg, "iou": iou})
        # test metrics differ from val, so the test must take them from the test rows
        rows.append({**base, "split": "test", "f1": f1 - 0.01, "epg": epg + 0.02, "iou": iou})
    return pd.DataFrame(rows)


def test_selection_is_the_pooled_val_front_plotted_with_test_metrics():
    df = _hand_frame()
    sel = selected_test_rows(df)
    assert sorted(zip(sel["run_id"], sel["epoch"])) == [("a", 2), ("b", 1), ("b", 3)]
    assert (sel["split"] == "test").all()
    got = sel.set_index(["run_id", "epoch"])["epg"].to_dict()
    assert got[("b", 3)] == pytest.approx(0.62) and got[("a", 2)] == pytest.approx(0.47)


def test_representative_is_highest_val_epg_within_5pp_f1_of_the_baseline():
    df = _hand_frame()
    # baseline val F1 0.80: b/3 (F1 0.70) drops 10 p.p.; among a/2 (0.79) and b/1 (0.76) b/1 has more EPG
    assert representative_checkpoint(df, df) == ("b", 1)


# ---- rendering -------------------------------------------------------------------------------------

def test_pareto_figure_renders_from_results_with_deviation_notes(fake, tmp_path):
    out = tmp_path / "out"
    paths = render_all("demo", fake, only=["mg.fig5a"], out=out)
    assert paths.placeholders == {}
    for ext in ("png", "pdf"):
        f = out / f"mg.fig5a.{ext}"
        assert f in paths and f.stat().st_size > 5000
    assert json.loads((out / "render_report.json").read_text())["mg.fig5a"] == "rendered"


def test_missing_groups_become_explicit_placeholders(fake, tmp_path):
    out = tmp_path / "out"
    paths = render_all("demo", fake, only=["mg.fig5b", "mg.figX6"], out=out)
    assert set(paths.placeholders) == {"mg.fig5b", "mg.figX6"}
    assert "coco-main" in paths.placeholders["mg.fig5b"] and "make mg" in paths.placeholders["mg.fig5b"]
    assert "coco-gradcam" in paths.placeholders["mg.figX6"]
    assert (out / "mg.fig5b.png").exists() and (out / "mg.fig5b.pdf").exists()
    report = json.loads((out / "render_report.json").read_text())
    assert report["mg.fig5b"].startswith("placeholder")


def test_table_placeholder_names_the_missing_group(tmp_path):
    out = tmp_path / "out"
    paths = render_all("demo", tmp_path / "empty", only=["mg.tabC1"], out=out)
    assert "waterbirds" in paths.placeholders["mg.tabC1"]
    assert pd.read_csv(out / "mg.tabC1.csv")["status"].tolist() == ["placeholder"]
    assert "PLACEHOLDER" in (out / "mg.tabC1.md").read_text()


def _selected_group_acc(results: Path, kind: str, task: str, loss: str | None, tap: str | None) -> np.ndarray:
    """Hand-computed oracle: test group accuracies (percent) at each run's selected epoch, per run."""
    accs = []
    for rid in store.list_runs(results, "demo", "waterbirds"):
        rdir = store.run_dir(results, "demo", rid)
        cfg = store.load_config(rdir)
        if (cfg.model_kind, cfg.task, cfg.loss, cfg.tap) != (kind, task, loss, tap):
            continue
        sel = store.read_done(rdir)["selected_epoch"]
        row = next(r for r in store.read_metrics(rdir) if r["split"] == "test" and r["epoch"] == sel)
        accs.append(np.array(row["group_acc"] + [row["accuracy"]]) * 100)
    return np.array(accs)


def test_waterbirds_tables_put_ours_beside_the_papers_numbers(fake, tmp_path):
    out = tmp_path / "out"
    render_all("demo", fake, only=["mg.tab1", "mg.tabC1"], out=out)
    t1 = pd.read_csv(out / "mg.tab1.csv")
    # the paper's Table 1 as printed (B-cos, worst = G3)
    printed = {("Baseline", "conventional", "worst (G3)"): 43.4, ("Energy", "conventional", "worst (G3)"): 56.1,
               ("L1", "reversed", "overall"): 82.2, ("Energy", "reversed", "worst (G3)"): 62.8}
    for (row, setting, metric), value in printed.items():
        line = t1[(t1["row"] == row) & (t1["setting"] == setting) & (t1["metric"] == metric)].iloc[0]
        assert line["paper"] == value
    oracle = _selected_group_acc(fake, "bcos", "bird", "energy", "input")
    line = t1[(t1["row"] == "Energy") & (t1["setting"] == "conventional") & (t1["metric"] == "worst (G3)")].iloc[0]
    assert line["ours"] == pytest.approx(oracle[:, 2].mean())
    assert line["ours_std"] == pytest.approx(oracle[:, 2].std())
    assert line["diff"] == pytest.approx(oracle[:, 2].mean() - 56.1)
    c1 = pd.read_csv(out / "mg.tabC1.csv")
    assert len(c1) == 3 * 5 * 2 * 5  # models x rows x settings x (G1..G4, overall)
    for (kind, row), settings in paper.TABLE_C1.items():
        for setting, cols in settings.items():
            for col, (mean, std) in cols.items():
                line = c1[(c1["model"] == kind) & (c1["row"] == row) & (c1["setting"] == setting)
                          & (c1["metric"] == (col.upper() if col != "overall" else "overall"))].iloc[0]
                assert (line["paper"], line["paper_std"]) == (mean, std)
    base = _selected_group_acc(fake, "vanilla", "place", None, None)
    line = c1[(c1["model"] == "vanilla") & (c1["row"] == "baseline") & (c1["setting"] == "reversed")
              & (c1["metric"] == "G2")].iloc[0]
    assert line["ours"] == pytest.approx(base[:, 1].mean()) and line["runs"] == len(base)


def test_paper_numbers_are_consistent_with_each_other():
    assert paper.TABLE_1["energy"]["conventional"]["worst"] == paper.TABLE_C1[("bcos", "input energy")]["conventional"]["g3"]
    assert paper.TABLE_D1["energy"] == (5e-4, 1e-3, 5e-3) and paper.TABLE_D2["l1"] == (0.01, 0.1, 1.0)
    assert set(paper.CLAIMS) == {f"R{i}" for i in range(1, 10)} | {"W"}


def test_lambda_tables_compare_the_paper_grid_with_the_runs(fake, tmp_path):
    out = tmp_path / "out"
    render_all("demo", fake, only=["mg.tabD1"], out=out)
    d1 = pd.read_csv(out / "mg.tabD1.csv")
    energy = d1[d1["loss"] == "Energy"].iloc[0]
    assert energy["paper"] == "0.0005, 0.001, 0.005"
    assert energy["ours"] == "0.5, 1"  # the fake runs' lambdas
    assert not energy["same"]


def test_claims_table_says_when_a_claim_does_not_hold(tmp_path):
    verdicts = {}
    for flip in (False, True):
        results = tmp_path / f"flip{flip}"
        write_fake_results(results, flip=flip, groups=["voc-main"])
        out = tmp_path / f"out{flip}"
        render_all("demo", results, only=["mg.claims"], out=out)
        verdicts[flip] = pd.read_csv(out / "mg.claims.csv").set_index("claim")["verdict"].to_dict()
    assert verdicts[False]["R1"] == "holds" and verdicts[False]["R2"] == "holds"
    assert verdicts[True]["R1"] == "does not hold"  # Energy's EPG gain made the smallest
    assert verdicts[False]["R7"] == "no results"  # voc-limited was not written


def test_qualitative_figure_draws_maps_from_kept_checkpoints(tmp_path):
    from rightfocus.data import load_dataset, synthetic

    voc = synthetic.make("voc2007", tmp_path / "voc", seed=0, n_train=4, n_val=4, n_test=4)
    k = len(load_dataset("voc2007", voc, "test", size=32)[0]["labels"])
    results = tmp_path / "results"
    write_fake_results(results, groups=["voc-main"], data_roots={"voc2007": str(voc)}, image_size=32)
    assert write_checkpoints(results, "demo", "voc-main", num_classes=k) > 0
    out = tmp_path / "out"
    paths = render_all("demo", results, only=["mg.fig9"], out=out)
    assert paths.placeholders == {}
    assert (out / "mg.fig9.png").stat().st_size > 5000


@pytest.mark.slow
def test_every_mg_id_writes_its_files_on_the_fake_results(tmp_path):
    results = tmp_path / "results"
    write_fake_results(results)
    out = tmp_path / "out"
    paths = render_all("demo", results, only=["mg.*"], out=out)
    for fig_id, (kind, _) in {**MG_IDS, **MG_EXTRA_IDS}.items():
        exts = ("png", "pdf") if kind == "figure" else ("csv", "md")
        for ext in exts:
            assert out / f"{fig_id}.{ext}" in paths, (fig_id, ext)
    # without checkpoints only the qualitative figures are placeholders
    qualitative = {"mg.fig1", "mg.fig2", "mg.fig9", "mg.fig11", "mg.fig13", "mg.figA1", "mg.figA2",
                   "mg.figA3", "mg.figA4", "mg.figC1"}
    assert set(paths.placeholders) == qualitative


# ---- the notebook and a real tiny training run ---------------------------------------------------

def test_figures_notebook_is_committed_clean_and_thin():
    from notebook_checks import clean_notebook

    names, source = clean_notebook(REPO / "notebooks" / "mg_figures.ipynb")
    assert names == {"profile", "results", "out", "only"}
    assert "render_all(" in source


@pytest.mark.slow  # two real tiny trainings (~30 s alone, minutes on a busy machine)
def test_renders_from_a_real_tiny_training_run(tmp_path):
    from rightfocus.data.synthetic import make
    from rightfocus.runs.config import RunConfig
    from rightfocus.training.runner import train_run

    voc = make("voc2007", tmp_path / "voc", seed=0, n_train=12, n_val=6, n_test=6, min_size=24, max_size=28)
    results = tmp_path / "results"
    base = RunConfig(dataset="voc2007", data_root=str(voc), model_kind="bcos", arch="tiny", epochs=2, lr=1e-2,
                     batch_size=6, image_size=16, seed=0)
    guided = RunConfig(**{**base.to_dict(), "method": "bcos", "tap": "input", "loss": "energy", "lam": 1.0,
                          "epochs": 3, "lr": 1e-3, "init_from": base.run_id})
    for cfg in (base, guided):
        train_run(cfg, results, progress=False)
    store.write_group(results, "demo", "voc-main", [base.run_id, guided.run_id])
    out = tmp_path / "out"
    paths = render_all("demo", results, only=["mg.fig4", "mg.fig5a", "mg.fig9", "mg.claims"], out=out)
    assert paths.placeholders == {}
    frame = pd.read_csv(out / "mg.claims.csv")
    from rightfocus.figures.operating_point import CLAIM_COLUMNS

    assert list(frame.columns) == [c for c in CLAIM_COLUMNS if c in frame.columns]  # the order AIM's table shares
    assert {"claim", "verdict", "ours", "paper", "operating point", "measured reason (if it does not hold)"} <= set(frame)
    claims = frame.set_index("claim")["verdict"]
    assert claims["R7"] == "no results" and claims["R1"] == "no results"  # one loss: nothing to compare


def test_dilated_box_examples_show_voc_and_coco(tmp_path):
    """MG supplement A.2 / Fig. A4 shows dilated-box examples for VOC and COCO: mg.figA4 reads
    voc-dilation and coco-dilation and draws a block of each."""
    from rightfocus.data import load_dataset, synthetic
    from rightfocus.figures import RenderContext

    assert FIGURES["mg.figA4"].groups == ("voc-dilation", "coco-dilation")
    voc = synthetic.make("voc2007", tmp_path / "voc", seed=0, n_train=4, n_val=4, n_test=4)
    coco = synthetic.make("coco2014", tmp_path / "coco", seed=0, n_train=4, n_val=4, n_test=4)
    results = tmp_path / "results"
    write_fake_results(results, groups=["voc-dilation", "coco-dilation"], image_size=32,
                       data_roots={"voc2007": str(voc), "coco2014": str(coco)})
    for group, root, name in (("voc-dilation", voc, "voc2007"), ("coco-dilation", coco, "coco2014")):
        k = len(load_dataset(name, root, "test", size=32)[0]["labels"])
        assert write_checkpoints(results, "demo", group, num_classes=k) > 0
    fig = FIGURES["mg.figA4"].func(RenderContext("demo", results, "mg.figA4", {}))
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels.count("voc-dilation") == 3 and labels.count("coco-dilation") == 2
