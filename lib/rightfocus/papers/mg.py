"""Model guidance (Rao et al., "Studying How to Efficiently and Effectively Guide Models with
Explanations", ICCV 2023): the ``mg.*`` ids."""

from rightfocus.papers import Paper, register

register(Paper(
    key="mg",
    title="Model guidance (Rao et al., ICCV 2023)",
    short="model guidance (Rao et al. 2023)",
    grid_module="rightfocus.experiments.grids",
    notebook="notebooks/mg_train.ipynb",
    renderers=("rightfocus.figures.mg_*",),
    inventory=("rightfocus.figures.inventory:MG_IDS", "rightfocus.figures.inventory:MG_EXTRA_IDS"),
    claims=("mg.claims",),
    deviations="rightfocus.experiments.grids:deviations_for",
    recipes="rightfocus.figures.mg_common:MG_RECIPES",
    weights="rightfocus.experiments.grids:PAPER_WEIGHTS",
    demo_command="make mg-demo",
))
