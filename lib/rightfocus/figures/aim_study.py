"""AIM perception study (Alshami et al. 2025, App. D.6): ``aim.study`` summarises collected responses
(``results/<profile>/study/responses*.csv``, written by `rightfocus.widgets.study.PerceptionStudy`)
or, when there are none, responses of SIMULATED participants (labelled so on the table and figure;
never passed off as people's choices); ``aim.fig31`` / ``aim.fig32`` render the study's welcome page
and trial page layout (image, map A left, map B right)."""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from rightfocus.figures import MissingResults, RenderContext, Table, register
from rightfocus.figures.aim_common import examples_of, image_np, pick_run, runs_table
from rightfocus.figures.aim_common import aim_protocol

#: simulated participants when no responses exist (the paper had 107)
SIMULATED_PARTICIPANTS = 107
#: perception noise of the simulated participant (EPG units)
SIMULATED_NOISE = 0.1


def _study_runs(ctx: RenderContext) -> tuple[pd.Series, pd.Series]:
    runs = runs_table(ctx, "aim-main")
    ds = "waterbirds100" if "waterbirds100" in set(runs["dataset"]) else runs["dataset"].iloc[0]
    return pick_run(runs, ds, aim=False), pick_run(runs, ds, aim=True, stage=2, tau=0.25)


def _responses(ctx: RenderContext) -> tuple[pd.DataFrame, str]:
    from rightfocus.widgets.study import load_responses, simulate_study

    folder = ctx.results / ctx.profile / "study"
    if folder.is_dir() and any(folder.glob("responses*.csv")):
        return load_responses(folder), f"collected responses ({folder})"
    base, aim = _study_runs(ctx)
    a = pd.read_csv(ctx.run_dir(base["run_id"]) / "per_sample.csv")
    b = pd.read_csv(ctx.run_dir(aim["run_id"]) / "per_sample.csv")
    j = a.merge(b, on="index", suffixes=("_a", "_b"))
    if j.empty:
        raise MissingResults("no common test images between the study's baseline and AIM runs")
    j = j.head(100)  # the paper's 100 images
    epg = {}
    for _, r in j.iterrows():
        epg[(int(r["index"]), base["run_id"])] = float(r["epg_gradcam_a"])
        epg[(int(r["index"]), aim["run_id"])] = float(r["epg_gradcam_b"])
    df = simulate_study(j["index"].astype(int).tolist(), base["run_id"], aim["run_id"], epg,
                        n_participants=SIMULATED_PARTICIPANTS, noise=SIMULATED_NOISE)
    return df, (f"SIMULATED participants ({SIMULATED_PARTICIPANTS}; each picks the map with the higher "
                f"EPG + N(0, {SIMULATED_NOISE}) noise): no human responses were collected")


@register("aim.study", kind="table", groups=["aim-main"],
          protocol=aim_protocol(
              "App. D.6",
              "Participants were shown the original image (left) and two GradCAM attribution maps from the "
              "baseline ConvNeXt (right) an(d AIM)",
              "aim-main",
              notes=("without collected responses it renders from a simulated participant, labelled as such",)))
def study(ctx: RenderContext) -> Table:
    from rightfocus.experiments.paper_numbers_aim import STUDY
    from rightfocus.widgets.study import summarize

    df, source = _responses(ctx)
    s = summarize(df)
    label = "SIMULATED" if s["simulated"] else "people"
    frame = pd.DataFrame([
        {"source": "paper (D.6)", "participants": STUDY["participants"], "evaluations": STUDY["evaluations"],
         "AIM preferred (%)": STUDY["aim_preferred_pct"], "p-value (two-sided binomial)": f"< {STUDY['p_value_bound']:g}"},
        {"source": f"ours ({label})", "participants": int(df["participant"].nunique()), "evaluations": s["n"],
         "AIM preferred (%)": 100 * s["rate"], "p-value (two-sided binomial)": f"{s['p_value']:.3g}"},
    ])
    return Table(frame, title="AIM perception study (forced choice, GradCAM baseline vs AIM)",
                 notes=[source, "binomial test: scipy.stats.binomtest against 0.5",
                        "images: the Waterbirds-100 test images (first 100 by index) in 4 disjoint subsets"])


WELCOME = (
    "Evaluating AI Visual Focus: A User Perception Study\n\n"
    "You will see a series of images, each with two attribution maps (heatmaps of where an AI model "
    "looked). One map is from a new model, the other from a standard baseline model; their left/right "
    "placement is random. For each image, select the map that more accurately and clearly focuses on "
    "the main object in the image, and less on irrelevant parts. About 10 minutes, 25 images. "
    "Participation is voluntary; responses are anonymous and used for research only."
)


@register("aim.fig31", kind="figure", groups=["none"],
          protocol=aim_protocol(
              "Fig. 31, App. D.6",
              "The user study welcome page, which provided participants with initial instructions."))
def fig31(ctx: RenderContext) -> Any:
    """The study's welcome page (as `rightfocus.widgets.study_widget` shows it)."""
    fig = plt.figure(figsize=(6, 3.2))
    fig.text(0.05, 0.95, "\n".join(textwrap.fill(p, 95) for p in WELCOME.split("\n")), va="top", fontsize=7)
    fig.text(0.05, 0.06, "[ Next ]", fontsize=8, bbox=dict(facecolor="#dbe9f6", edgecolor="black"))
    fig.suptitle("AIM Fig. 31: perception study welcome page", fontsize=8)
    return fig


@register("aim.fig32", kind="figure", groups=["none"],
          protocol=aim_protocol('Fig. 32, App. D.6', 'An example trial from our user perception study.'))
def fig32(ctx: RenderContext) -> Any:
    """One trial page: the image, map A (left) and map B (right) and the question; drawn from our
    Waterbirds-100 runs when they exist, otherwise as an empty layout."""
    from rightfocus.widgets.study import QUESTION

    fig, axes = plt.subplots(1, 3, figsize=(6, 2.6))
    try:
        base, aim = _study_runs(ctx)
        ea, eb = examples_of(ctx, base), examples_of(ctx, aim)
        img = image_np(ea["image"][0])
        maps = [ea["gradcam"][0].numpy(), eb["gradcam"][0].numpy()]
        axes[0].imshow(img)
        for ax, m, name in zip(axes[1:], maps, ("A", "B")):
            ax.imshow(img)
            m = m.clip(0)
            ax.imshow(m / m.max() if m.max() > 0 else m, cmap="jet", alpha=0.5, vmin=0, vmax=1)
            ax.set_title(name)
        note = "maps: our baseline (A) and AIM (B) on a Waterbirds-100 test image; placement is random per trial"
    except MissingResults as exc:
        for ax, name in zip(axes, ("image", "A", "B")):
            ax.text(0.5, 0.5, name, ha="center", va="center")
        note = f"layout only ({exc})"
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[0].set_title("image")
    fig.suptitle("AIM Fig. 32: trial page\n" + textwrap.fill(QUESTION, 100), fontsize=7)
    fig.text(0.01, -0.02, note, fontsize=5.5, color="#444444")
    return fig
