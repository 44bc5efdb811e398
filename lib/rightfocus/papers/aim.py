"""AIM (Alshami et al. 2025, attention-inspired masks learnt from labels alone): the ``aim.*`` ids."""

from __future__ import annotations

import fnmatch

from rightfocus.papers import Paper, register


def deviations(fig_id: str) -> list[str]:
    """The AIM demo's deviations that affect `fig_id`: `aim_grids.AIM_DEMO_DEVIATIONS` entries are plain
    strings (every aim id) or mappings with ``text`` (or ``what``) and ``figures`` (glob patterns such as
    ``aim.tab1[0-6]``)."""
    from rightfocus.experiments.aim_grids import AIM_DEMO_DEVIATIONS

    out = []
    for d in AIM_DEMO_DEVIATIONS:
        if isinstance(d, str):
            out.append(d)
        elif any(fnmatch.fnmatch(fig_id, pat) for pat in d.get("figures", ("*",))):
            out.append(str(d.get("text", d.get("what", ""))))
    return out


register(Paper(
    key="aim",
    title="AIM (Alshami et al., 2025)",
    short="AIM (Alshami et al. 2025)",
    grid_module="rightfocus.experiments.aim_grids",
    notebook="notebooks/aim_train.ipynb",
    renderers=("rightfocus.figures.aim_*",),
    # the AIM loop has no run lock: groups sharing aim-main's runs must not train them side by side
    first_group="aim-main",
    inventory=("rightfocus.figures.aim_common:AIM_IDS",),
    claims=("aim.claims",),
    deviations=deviations,
    recipes="rightfocus.figures.aim_common:AIM_RECIPES",
    weights="rightfocus.experiments.aim_grids:PRETRAINED_FILES",
    demo_command="make aim-demo",
))
