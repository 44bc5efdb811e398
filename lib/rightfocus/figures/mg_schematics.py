"""Model guidance schematic (Rao et al. 2023, Fig. 3), drawn as an annotated diagram of our own
pipeline: a TappedModel's stages and taps, one forward pass, the classification loss and the
localisation loss on the attribution at the chosen tap (Eq. 1)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from rightfocus.figures import RenderContext, register, style
from rightfocus.figures.mg_common import mg_protocol


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str, fs: float = 7) -> None:
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="black", linewidth=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs)


def _arrow(ax: Any, a: tuple[float, float], b: tuple[float, float], **kw: Any) -> None:
    kw.setdefault("color", "black")
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=9, linewidth=0.9, **kw))


@register("mg.fig3", kind="figure", groups=["none"],
          protocol=mg_protocol(
              "Fig. 3, Sec. 3.1",
              "We jointly optimize for classification (L_class) and localization of attributions to "
              "human-annotated bounding boxes (L_loc)"))
def fig3(ctx: RenderContext) -> Any:
    """Schematic: image -> encoded input -> stages (taps mid1..final) -> head -> logits; BCE against
    labels; attribution for a sampled class at a tap -> localisation loss against the box mask."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.1, 5)
    ax.axis("off")
    c = style.OKABE_ITO
    # input image with a box
    ax.add_patch(Rectangle((0.2, 2.2), 1.3, 1.3, facecolor="#f4e9d8", edgecolor="black"))
    ax.add_patch(Rectangle((0.55, 2.45), 0.6, 0.75, fill=False, edgecolor=c["blue"], linewidth=1.3))
    ax.text(0.85, 1.95, "image X + boxes", ha="center", fontsize=7)
    _box(ax, 1.75, 2.45, 1.2, 0.8, "encode\nImageNet or\nB-cos 6-ch\ntap: input", "#eeeeee", 5.5)
    stages = [("stem+layer1", "mid1"), ("layer2", "mid2"), ("layer3", "mid3"), ("layer4", "final")]
    x = 3.2
    _arrow(ax, (1.5, 2.85), (1.8, 2.85))
    _arrow(ax, (2.9, 2.85), (x, 2.85))
    taps = {"input": (2.35, 2.45)}
    for name, tap in stages:
        _box(ax, x, 2.45, 1.0, 0.8, f"{name}\ntap: {tap}", "#dbe9f6", 6.5)
        taps[tap] = (x + 0.5, 2.45)
        _arrow(ax, (x + 1.0, 2.85), (x + 1.25, 2.85))
        x += 1.25
    _box(ax, x, 2.45, 0.9, 0.8, "head\n(pool+linear)", "#dbe9f6", 6.5)
    _arrow(ax, (x + 0.9, 2.85), (x + 1.2, 2.85))
    _box(ax, x + 1.2, 2.45, 0.9, 0.8, "logits f(X)", "#ffffff", 7)
    # classification loss
    _box(ax, x + 0.9, 3.6, 1.6, 0.5, "L_class = BCE(f(X), y)", "#fde0c5", 7)
    _arrow(ax, (x + 1.65, 3.25), (x + 1.65, 3.6))
    # attribution and localisation loss
    _box(ax, 5.0, 0.35, 2.6, 0.9, "attribution A_k at the tap\n(IxG / IntGrad / GradCAM / B-cos)\n"
         "k: one sampled true class", "#e3f2e1", 6.5)
    for tap in ("input", "mid2", "final"):
        tx, ty = taps[tap]
        _arrow(ax, (tx, ty), (6.3, 1.25), linestyle="--", connectionstyle="arc3,rad=0.1")
    _box(ax, 8.3, 0.35, 2.4, 0.9, "L_loc(A_k, M_k)\nEnergy | L1 | PPCE | RRR*\nM_k: union of boxes of k",
         "#e3f2e1", 6.5)
    _arrow(ax, (7.6, 0.8), (8.3, 0.8))
    # the box mask travels under the diagram to the localisation loss
    ax.plot([0.85, 0.85, 9.5], [2.2, 0.1, 0.1], color=c["blue"], linewidth=0.9)
    _arrow(ax, (9.5, 0.1), (9.5, 0.35), color=c["blue"])
    ax.text(3.0, 0.15, "boxes -> mask M_k (training only)", fontsize=6, color=c["blue"])
    ax.text(0.2, 4.6, "L = L_class + lambda * sum over the batch of L_loc   (Eq. 1)", fontsize=9,
            ha="left", fontweight="bold")
    ax.text(0.2, 4.15, "one forward pass yields the logits and the tap's activation; the attribution is\n"
            "differentiated again (create_graph) so that L_loc trains the model", fontsize=6.5, ha="left")
    ax.set_title("Model guidance (Fig. 3), as implemented here", fontsize=9)
    return fig
