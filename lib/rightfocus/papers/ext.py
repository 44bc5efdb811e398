"""Beyond the papers (the ``ext.*`` ids): model guidance with other mask sources (segmentation masks, a
teacher's explanations, AIM's masks) and more explanation metrics. Its runs start from MG's and AIM's
runs, so it is not standalone: ``make ext`` trains it beside (or after) ``make mg`` and ``make aim``."""

from rightfocus.papers import Paper, register

register(Paper(
    key="ext",
    title="Beyond the papers: guidance without boxes, more explanation metrics",
    short="beyond the papers: guidance without boxes, more explanation metrics",
    grid_module="rightfocus.experiments.ext_grids",
    notebook="notebooks/mg_train.ipynb",
    renderers=("rightfocus.figures.ext_*",),
    inventory=("rightfocus.figures.inventory:EXT_GUIDANCE_IDS", "rightfocus.figures.inventory:EXT_METRIC_IDS"),
    claims=("ext.guidance_claims",),
    deviations="rightfocus.experiments.ext_grids:deviations_for",
    recipes="rightfocus.figures.ext_guidance:EXT_RECIPES",
    standalone=False,
))
