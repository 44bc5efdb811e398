"""The inventory: every figure/table id the project renders (each paper's figures and tables, then the
project's own summaries), with its kind and the experiment groups it reads.

"none" and "config" groups need no training results (schematics; hyper-parameter tables)."""

from __future__ import annotations

#: mg ids -> (kind, groups), in the inventory's order.
MG_IDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mg.fig1": ("figure", ("voc-main", "waterbirds")),
    "mg.fig2": ("figure", ("voc-main",)),
    "mg.fig3": ("figure", ()),
    "mg.fig4": ("figure", ("voc-main",)),
    "mg.fig5a": ("figure", ("voc-main",)),
    "mg.fig5b": ("figure", ("coco-main",)),
    "mg.fig6": ("figure", ("voc-main",)),
    "mg.fig7": ("figure", ("voc-backbones",)),
    "mg.fig8": ("figure", ("voc-layers",)),
    "mg.fig9": ("figure", ("voc-main",)),
    "mg.fig10": ("figure", ("voc-dilation",)),
    "mg.fig11": ("figure", ("voc-dilation",)),
    "mg.fig12": ("figure", ("voc-limited",)),
    "mg.fig13": ("figure", ("waterbirds",)),
    "mg.tab1": ("table", ("waterbirds",)),
    "mg.figA1": ("figure", ("voc-main",)),
    "mg.figA2": ("figure", ("coco-main",)),
    "mg.figA3": ("figure", ("voc-main", "coco-main")),
    "mg.figA4": ("figure", ("voc-dilation", "coco-dilation")),
    "mg.figB1": ("figure", ("voc-main",)),
    "mg.figB2": ("figure", ("coco-main",)),
    "mg.figB3": ("figure", ("voc-main",)),
    "mg.figB4": ("figure", ("voc-gradcam",)),
    "mg.figB5": ("figure", ("voc-layers",)),
    "mg.figB6": ("figure", ("voc-main",)),
    "mg.figB7": ("figure", ("voc-limited",)),
    "mg.figB8": ("figure", ("voc-dilation",)),
    "mg.figB9": ("figure", ("voc-backbones",)),
    "mg.tabC1": ("table", ("waterbirds",)),
    "mg.figC1": ("figure", ("waterbirds",)),
    "mg.tabD1": ("table", ()),
    "mg.tabD2": ("table", ()),
    "mg.figX1": ("figure", ("voc-main",)),
    "mg.figX2": ("figure", ("coco-main",)),
    "mg.figX3": ("figure", ("voc-main",)),
    "mg.figX4": ("figure", ("coco-main",)),
    "mg.figX5": ("figure", ("voc-gradcam",)),
    "mg.figX6": ("figure", ("coco-gradcam",)),
    "mg.figX7": ("figure", ("voc-layers",)),
    "mg.figX8": ("figure", ("voc-layers",)),
    "mg.figX9": ("figure", ("voc-limited",)),
    "mg.figX10": ("figure", ("voc-limited",)),
    "mg.figX11": ("figure", ("voc-dilation",)),
}

#: ids beyond the inventory that the project adds (generated summaries).
MG_EXTRA_IDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mg.claims": ("table", ("voc-main", "coco-main", "voc-backbones", "voc-layers", "voc-limited",
                            "voc-dilation", "waterbirds")),
}


#: ids beyond both papers (guidance without hand-drawn boxes: `experiments.ext_grids`,
#: `figures.ext_guidance`)
EXT_GUIDANCE_IDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ext.boxes_vs_masks": ("figure", ("ext-masks",)),
    "ext.annotation_free": ("figure", ("ext-annotation-free",)),
    "ext.guidance_claims": ("table", ("ext-masks", "ext-annotation-free")),
}


# ---- ext: beyond both papers (explanation-metric suite) ----------------------------------------
#: ext ids of the explanation-metric suite (`figures/ext_metrics.py`): their kind and the groups they
#: need (the agreement ids also read voc-layers and aim-main when those have results)
EXT_METRIC_IDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ext.metric_agreement": ("table", ("voc-main",)),
    "ext.metric_agreement_fig": ("figure", ("voc-main",)),
    "ext.sanity": ("figure", ("voc-main",)),
}


def parse_inventory(text: str) -> dict[str, str]:
    """Ids -> last column of markdown table rows whose first cell names ``mg.*`` / ``aim.*`` ids (ranges
    like `a .. b` and `a, b` in one cell are expanded); tests compare an id list in that form with this
    module's."""
    import re

    ids: dict[str, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.match(r"^(mg|aim)\.", cells[0]):
            continue
        first = cells[0]
        rng = re.match(r"^(\w+)\.(\D+)(\d+)\s*\.\.\s*\w+\.\D+(\d+)$", first)
        if rng:
            prefix, stem, lo, hi = rng.group(1), rng.group(2), int(rng.group(3)), int(rng.group(4))
            names = [f"{prefix}.{stem}{i}" for i in range(lo, hi + 1)]
        else:
            names = [n.strip() for n in first.split(",")]
        for name in names:
            ids[name] = cells[-1]
    return ids
