"""AIM schematics drawn as annotated diagrams of OUR architecture (models/aim.py): Fig. 2 (backbone +
top-down masking pathway), Figs. 27/28 (bottom-up masking with / without skip connections) and
Fig. 30 (the edge-emphasised 7x7 initialisation filter, from `edge_emphasis_filter`)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from rightfocus.figures import RenderContext, register, style
from rightfocus.figures.aim_common import aim_protocol

BACKBONE = "#dbe9f6"
TOPDOWN = "#e3f2e1"
MASK = "#fde0c5"
HEAD = "#f2e5f7"


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str, fs: float = 6.5) -> None:
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.06",
                                facecolor=color, edgecolor="black", linewidth=0.7))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs)


def _arrow(ax: Any, a: tuple[float, float], b: tuple[float, float], **kw: Any) -> None:
    kw.setdefault("color", "black")
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=8, linewidth=0.8, **kw))


def _canvas(w: float, h: float, xmax: float, ymax: float) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(w, h))
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, ymax)
    ax.axis("off")
    return fig, ax


@register("aim.fig2", kind="figure", groups=["none"],
          protocol=aim_protocol('Fig. 2, Sec. 3', 'Abstract Diagram of the [backbone]+AIM Architecture.'))
def fig2(ctx: RenderContext) -> Any:
    """Bottom-up stages S0..S3 (ConvNeXt-tiny numbering); top-down stages T3..T1 (here T=1), each with
    a feature branch (1x1 conv, 3x3 conv, LayerNorm, GELU) and a mask estimator (3x3 conv, 3 residual
    blocks, global context, 1x1 conv, binary Gumbel) whose mask multiplies the branch (Eq. 3); stage
    outputs are summed top-down after nearest upsampling; per-stage classifiers (Eq. 4), final (Eq. 5)."""
    from rightfocus.models.aim import MASK_WIDTH, TOP_DOWN_WIDTH

    fig, ax = _canvas(10, 5.2, 14, 7.5)
    res = {0: 56, 1: 28, 2: 14, 3: 7}
    ax.add_patch(FancyBboxPatch((0.2, 2.0), 1.0, 1.0, boxstyle="square", facecolor="#f4e9d8", edgecolor="black"))
    ax.text(0.7, 1.75, "image (224 px)", ha="center", fontsize=6)
    for s in range(4):
        x = 1.6 + s * 1.7
        _box(ax, x, 2.0, 1.3, 1.0, f"S{s}\n{res[s]}x{res[s]}", BACKBONE)
        _arrow(ax, (x - 0.4 if s else 1.2, 2.5), (x, 2.5))
    ax.text(4.3, 1.5, "bottom-up pathway: ConvNeXt-tiny / ResNet backbone (ImageNet weights)",
            ha="center", fontsize=6.5)
    for k, s in enumerate((3, 2, 1)):
        x = 1.6 + s * 1.7
        # branches above the backbone stage
        _box(ax, x - 0.1, 4.0, 1.5, 0.8, f"T{s} branch\n1x1 conv -> 3x3 conv\nLayerNorm, GELU ({TOP_DOWN_WIDTH} ch)",
             TOPDOWN, 5)
        _box(ax, x - 0.1, 5.1, 1.5, 0.9, f"mask estimator M\n3x3 conv, 3 res. blocks\n+ global context, 1x1 conv\n"
             f"-> binary Gumbel G ({MASK_WIDTH} ch)", MASK, 4.6)
        _arrow(ax, (x + 0.65, 3.0), (x + 0.65, 4.0))
        ax.text(x + 1.55, 4.9, "x", fontsize=9, ha="center", va="center")
        _box(ax, x + 0.2, 6.35, 0.9, 0.55, f"f{s}: O{s} -> y{s}", HEAD, 5.5)
        _arrow(ax, (x + 0.65, 6.0), (x + 0.65, 6.35))
    for s in (3, 2):
        x = 1.6 + s * 1.7
        _arrow(ax, (x - 0.1, 4.4), (x - 0.25, 4.4), color=style.OKABE_ITO["green"])
        ax.text(x - 0.2, 3.75, "up (nearest)\n+ sum", fontsize=5, ha="center", color=style.OKABE_ITO["green"])
    _box(ax, 0.2, 4.1, 1.2, 0.7, "O_final -> f_final\n-> y_final (Eq. 5)", HEAD, 5.5)
    _arrow(ax, (1.5, 4.4), (1.4, 4.4), color=style.OKABE_ITO["green"])
    _box(ax, 9.0, 0.2, 4.8, 1.1, "loss (Eq. 7): sum of CE(y_l) + CE(y_final) (label smoothing 0.05)\n"
         "+ lambda (6) x sum (r_l - tau)^2, r_l = active share of mask B_l (Eq. 6),\n"
         "tau annealed 1.0 -> 25 % / 35 % (App. A.3)", "#ffffff", 5.5)
    ax.text(7.0, 7.25, "AIM Fig. 2 (ours): [backbone]+AIM[T=1]; O_l = T_l(S_l) x B_l, B_l = G(M(S_l))",
            ha="center", fontsize=7.5)
    return fig


def _bottom_up(skip: bool) -> Any:
    fig, ax = _canvas(9, 3.0, 13, 4.2)
    x = 0.3
    ax.add_patch(FancyBboxPatch((x, 1.4), 0.9, 0.9, boxstyle="square", facecolor="#f4e9d8", edgecolor="black"))
    ax.text(x + 0.45, 1.15, "image", ha="center", fontsize=6)
    x = 1.6
    for s in range(4):
        masked = s > 0
        _box(ax, x, 1.4, 1.2, 0.9, f"S{s}\nconv block", BACKBONE)
        _arrow(ax, (x - 0.4, 1.85), (x, 1.85))
        if masked:
            _box(ax, x, 2.8, 1.2, 0.8, "mask unit M\n(stride of S)\n-> Gumbel", MASK, 5.5)
            _arrow(ax, (x - 0.25, 1.85), (x - 0.25, 3.2))
            _arrow(ax, (x - 0.25, 3.2), (x, 3.2))
            ax.text(x + 1.4, 2.4, "x", fontsize=9, ha="center")
            _arrow(ax, (x + 0.6, 2.8), (x + 1.35, 2.5))
            if skip:
                ax.annotate("", xy=(x + 1.5, 1.3), xytext=(x - 0.3, 1.3),
                            arrowprops=dict(arrowstyle="-|>", connectionstyle="arc3,rad=0.5",
                                            color=style.OKABE_ITO["vermillion"], lw=0.8))
                ax.text(x + 0.6, 0.55, "skip: + input\n(dense again)", fontsize=5, ha="center",
                        color=style.OKABE_ITO["vermillion"])
        x += 2.3
    _box(ax, x, 1.4, 1.3, 0.9, "backbone head\n-> logits", HEAD)
    _arrow(ax, (x - 0.4, 1.85), (x, 1.85))
    return fig, ax


@register("aim.fig27", kind="figure", groups=["none"],
          protocol=aim_protocol(
              "Fig. 27, App. D.4",
              "The illustration depicts the architecture of the bottom-up bottlenecking model, adapted from "
              "[49], highlighting the flow of data through the model, including skip connections and mask "
              "estimators."))
def fig27(ctx: RenderContext) -> Any:
    """DynConv-style bottom-up masking WITH skip connections (what AIM argues against)."""
    fig, ax = _bottom_up(skip=True)
    ax.set_title("AIM Fig. 27 (ours): bottom-up bottlenecking with skip connections (DynConv); "
                 "masks from the block input multiply the block output, the skip makes it dense", fontsize=7)
    return fig


@register("aim.fig28", kind="figure", groups=["none"],
          protocol=aim_protocol(
              "Fig. 28, App. D.4",
              "An illustration showing the same bottom-up bottlenecking model's architecture from Figure 27 but"
              " without the skip-connection to maintain the sparsity of the feature maps."))
def fig28(ctx: RenderContext) -> Any:
    """Our bottom-up variant (models/aim.py BottomUpAimModel): no skip, the maps stay sparse."""
    fig, ax = _bottom_up(skip=False)
    ax.set_title("AIM Fig. 28 (ours): bottom-up AIM without skip connections (BottomUpAimModel; "
                 "masked blocks 1, 2, 3 shown)", fontsize=7)
    return fig


@register("aim.fig30", kind="figure", groups=["none"],
          protocol=aim_protocol(
              "Fig. 30, App. D.5",
              "An illustration showing the weight matrix of a convolutional layer with one (7x7) filter, "
              "initialized using the proposed idea of weighting the convolutional filter weights according to "
              "their spatial distance from the center of the filter kernel."))
def fig30(ctx: RenderContext) -> Any:
    """The edge-emphasised 7x7 filter of App. D.5 from `edge_emphasis_filter(7)`."""
    from rightfocus.models.aim import edge_emphasis_filter

    w = edge_emphasis_filter(7).reshape(7, 7).numpy()
    fig, ax = plt.subplots(figsize=(3.2, 3.0))
    im = ax.imshow(w, cmap="viridis")
    for i in range(7):
        for j in range(7):
            ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=5, color="white")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("AIM Fig. 30: edge-emphasised 7x7 weight scale\n(models/aim_parts.edge_emphasis_filter)", fontsize=7)
    return fig
