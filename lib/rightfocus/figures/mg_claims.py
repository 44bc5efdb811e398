"""`mg.claims`: for our results, does each finding R1-R9 of Rao et al. 2023 (Sec. 5) and the
Waterbirds finding (Sec. 5.5, Table 1) hold? Each check states its criterion, our numbers and the
paper's, and a verdict: "holds", "partly (k/n)", "does not hold" or "no results". The criteria are
fixed here in advance and never tuned to the outcome.

The common yardstick: for a configuration (dataset, model, arch, attribution, tap, loss, ...), the
best localisation score among the selected checkpoints' TEST points whose F1 is at most 5 p.p.
below the baseline's (the paper's representative-model rule, supplement D.1.1)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from rightfocus.experiments import paper_numbers_mg as paper
from rightfocus.figures import MissingResults, RenderContext, Table, operating_point, register
from rightfocus.figures.mg_common import (
    MODEL_KINDS, PCT, baseline_point, guided, match, not_gradcam, selected_test_rows,
    layer_speedup_record, tap_speedups,
)
from rightfocus.figures.mg_common import mg_protocol
from rightfocus.figures.mg_tables import waterbirds_runs

MAX_DROP = 0.05


def best_at_drop(group_df: pd.DataFrame, cfg: pd.DataFrame, y: str, eval_tap: str | None = None,
                 max_drop: float = MAX_DROP) -> tuple[float, float, float, float] | None:
    """(best y, its F1, baseline y, baseline F1) over the selected test points of one configuration
    whose F1 >= baseline F1 - `max_drop`; None when there are no points or no baseline."""
    pts = selected_test_rows(cfg, eval_tap=eval_tap).dropna(subset=["f1", y])
    if pts.empty:
        return None
    tap = eval_tap or str(cfg["config_tap"].iloc[0])
    base = baseline_point(group_df, cfg, "f1", y, tap, str(cfg["config_method"].iloc[0]))
    if base is None:
        return None
    ok = pts[pts["f1"] >= base[0] - max_drop - 1e-12]
    if ok.empty:
        return np.nan, np.nan, base[1], base[0]
    best = ok.sort_values([y, "f1"], ascending=False).iloc[0]
    return float(best[y]), float(best["f1"]), base[1], base[0]


def _panels(df: pd.DataFrame, taps: Sequence[str] | None = None) -> list[tuple[tuple, pd.DataFrame]]:
    """Guided rows (main attribution) split into panels (dataset, model, arch, tap, fraction, dilation)."""
    g = match(guided(df), {"config_method": not_gradcam})
    if taps is not None:
        g = g[g["config_tap"].isin(list(taps))]
    keys = ["dataset", "model_kind", "arch", "config_tap", "annotation_fraction", "dilation"]
    return [(k, rows) for k, rows in g.groupby(keys, dropna=False)]


def _fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v * PCT:.1f}"


def _verdict(k: int, n: int) -> str:
    if n == 0:
        return "no results"
    if k == n:
        return "holds"
    return f"partly ({k}/{n})" if k > 0 else "does not hold"


def _loss_wins(ctx: RenderContext, groups: Sequence[str], y: str, winner: str,
               taps: Sequence[str] | None = None) -> tuple[str, str]:
    """In how many panels does `winner` reach the best `y` (at <= 5 p.p. F1 drop) among the losses?"""
    k = n = 0
    detail = []
    for group in groups:
        if not ctx.has_group(group):
            continue
        df = ctx.metrics(group)
        for key, rows in _panels(df, taps):
            scores = {}
            for loss, cfg in rows.groupby("loss"):
                r = best_at_drop(df, cfg, y)
                if r is not None and not np.isnan(r[0]):
                    scores[loss] = r[0]
            if winner not in scores or len(scores) < 2:
                continue
            n += 1
            top = max(scores, key=scores.get)
            win = scores[winner] >= max(scores.values()) - 1e-12
            k += win
            detail.append(f"{key[0]}/{key[1]}/{key[2]}@{key[3]}: " + ", ".join(
                f"{l} {_fmt(v)}" for l, v in sorted(scores.items(), key=lambda kv: -kv[1])) + ("" if win else f" (best: {top})"))
    return _verdict(k, n), f"{winner} best in {k}/{n} panels; " + "; ".join(detail)


def claim_r1(ctx: RenderContext) -> tuple[str, str, str]:
    v, d = _loss_wins(ctx, ("voc-main", "coco-main", "voc-backbones"), "epg", "energy")
    return v, d, "per panel: Energy has the highest best-EPG (F1 drop <= 5 p.p.) among the losses"


def claim_r2(ctx: RenderContext) -> tuple[str, str, str]:
    v, d = _loss_wins(ctx, ("voc-main", "coco-main", "voc-backbones"), "iou", "l1")
    return v, d, "per panel: L1 has the highest best-IoU (F1 drop <= 5 p.p.) among the losses"


def claim_r3(ctx: RenderContext) -> tuple[str, str, str]:
    crit = "per panel: Energy's best on-object EPG (F1 drop <= 5 p.p.) exceeds L1's"
    if not ctx.has_group("voc-main") or ctx.metrics("voc-main")["onobj_epg"].isna().all():
        return "no results", "no on-object EPG recorded (needs segmentation masks)", crit
    df = ctx.metrics("voc-main")
    k = n = 0
    detail = []
    for key, rows in _panels(df):
        r = {l: best_at_drop(df, rows[rows["loss"] == l], "onobj_epg") for l in ("energy", "l1")
             if (rows["loss"] == l).any()}
        if len(r) < 2 or any(v is None or np.isnan(v[0]) for v in r.values()):
            continue
        n += 1
        k += r["energy"][0] > r["l1"][0]
        detail.append(f"{key[1]}@{key[3]}: Energy {_fmt(r['energy'][0])} vs L1 {_fmt(r['l1'][0])}")
    return _verdict(k, n), f"Energy > L1 in {k}/{n} panels; " + "; ".join(detail), crit


def claim_r4(ctx: RenderContext) -> tuple[str, str, str]:
    crit = ("input layer: B-cos has the highest baseline EPG and the highest Energy best-EPG "
            "(F1 drop <= 5 p.p.) among the three model types (VOC)")
    if not ctx.has_group("voc-main"):
        return "no results", "voc-main missing", crit
    df = ctx.metrics("voc-main")
    best, base = {}, {}
    for kind in MODEL_KINDS:
        cfg = match(guided(df), {"model_kind": kind, "config_tap": "input", "loss": "energy",
                                 "config_method": not_gradcam})
        if cfg.empty:
            continue
        r = best_at_drop(df, cfg, "epg")
        if r is not None:
            best[kind], base[kind] = (r[0], r[1]), r[2]
    if "bcos" not in best or len(best) < 2:
        return "no results", "needs B-cos and another model guided with Energy at the input", crit
    ok_base = base["bcos"] >= max(base.values())
    ok_best = best["bcos"][0] >= max(v[0] for v in best.values())
    text = "; ".join(f"{k}: baseline EPG {_fmt(base[k])}, Energy {_fmt(best[k][0])} @ F1 {_fmt(best[k][1])}"
                     for k in best)
    return _verdict(int(ok_base) + int(ok_best), 2), text, crit


def claim_r5(ctx: RenderContext) -> tuple[str, str, str]:
    crit = "final layer, every model: some selected checkpoint beats the baseline's EPG and some its IoU (test)"
    k = n = 0
    detail = []
    for group in ("voc-main", "coco-main"):
        if not ctx.has_group(group):
            continue
        df = ctx.metrics(group)
        for key, rows in _panels(df, taps=["final"]):
            pts = pd.concat([selected_test_rows(c) for _, c in rows.groupby("loss")])
            be = baseline_point(df, rows, "epg", "iou", "final", str(rows["config_method"].iloc[0]))
            if pts.empty or be is None:
                continue
            n += 1
            ok = pts["epg"].max() > be[0] and pts["iou"].max() > be[1]
            k += ok
            detail.append(f"{key[0]}/{key[1]}: EPG {_fmt(be[0])}->{_fmt(pts['epg'].max())}, "
                          f"IoU {_fmt(be[1])}->{_fmt(pts['iou'].max())}")
    return _verdict(k, n), f"gains in {k}/{n} model/dataset pairs; " + "; ".join(detail), crit


def claim_r6(ctx: RenderContext) -> tuple[str, str, str]:
    crit = "some selected checkpoint strictly dominates its baseline in (F1, EPG) or (F1, IoU) (test)"
    found = []
    n = 0
    for group in ("voc-main", "coco-main"):
        if not ctx.has_group(group):
            continue
        df = ctx.metrics(group)
        for key, rows in _panels(df):
            for loss, cfg in rows.groupby("loss"):
                pts = selected_test_rows(cfg)
                tap, method = str(cfg["config_tap"].iloc[0]), str(cfg["config_method"].iloc[0])
                for y in ("epg", "iou"):
                    b = baseline_point(df, cfg, "f1", y, tap, method)
                    if pts.empty or b is None:
                        continue
                    n += 1
                    dom = pts[(pts["f1"] > b[0]) & (pts[y] > b[1])]
                    if not dom.empty:
                        best = dom.sort_values("f1").iloc[-1]
                        found.append(f"{key[0]}/{key[1]}@{key[3]}/{loss}: +{_fmt(best[y] - b[1])} {y.upper()}, "
                                     f"+{_fmt(best['f1'] - b[0])} F1")
    if n == 0:
        return "no results", "no guided results", crit
    return ("holds" if found else "does not hold"), (f"{len(found)} of {n} configuration/metric pairs improve both; "
                                                     + "; ".join(found[:6])), crit


def claim_r7(ctx: RenderContext) -> tuple[str, str, str]:
    crit = ("B-cos, input, Energy: best-EPG gain over the baseline (F1 drop <= 5 p.p.) > 0 at the smallest "
            "annotation fraction, and the second-smallest fraction within 5 p.p. EPG of 100 %")
    if not ctx.has_group("voc-limited"):
        return "no results", "voc-limited missing", crit
    df = ctx.metrics("voc-limited")
    cfgs = match(guided(df), {"model_kind": "bcos", "config_tap": "input", "loss": "energy"})
    gains = {}
    for frac, cfg in cfgs.groupby("annotation_fraction"):
        r = best_at_drop(df, cfg, "epg")
        if r is not None and not np.isnan(r[0]):
            gains[float(frac)] = (r[0] - r[2], r[1] - r[3])
    if len(gains) < 2:
        return "no results", "needs at least two annotation fractions", crit
    fr = sorted(gains)
    ok1 = gains[fr[0]][0] > 0
    full = gains.get(1.0, gains[fr[-1]])
    ok2 = abs(gains[fr[1]][0] - full[0]) <= 0.05 if len(fr) > 2 else True
    text = "; ".join(f"{f * 100:g} %: +{_fmt(g[0])} EPG ({_fmt(g[1])} F1)" for f, g in sorted(gains.items()))
    return _verdict(int(ok1) + int(ok2), 2), text, crit


def claim_r8(ctx: RenderContext) -> tuple[str, str, str]:
    crit = ("per model (input): EPG decline from 0 % to the largest dilation (best EPG, F1 drop <= 5 p.p.) "
            "is smaller for Energy than for L1")
    if not ctx.has_group("voc-dilation"):
        return "no results", "voc-dilation missing", crit
    df = ctx.metrics("voc-dilation")
    k = n = 0
    detail = []
    for kind in MODEL_KINDS:
        dec = {}
        for loss in ("energy", "l1"):
            cfgs = match(guided(df), {"model_kind": kind, "loss": loss, "config_method": not_gradcam})
            by = {}
            for d, cfg in cfgs.groupby("dilation"):
                r = best_at_drop(df, cfg, "epg")
                if r is not None and not np.isnan(r[0]):
                    by[float(d)] = r[0]
            if len(by) >= 2:
                dec[loss] = (by[min(by)] - by[max(by)], max(by))
            elif len(cfgs):
                detail.append(f"{kind}: {loss} reaches F1 within 5 p.p. of the baseline at {len(by)} of "
                              f"{cfgs['dilation'].nunique()} dilations (decline undefined)")
        if len(dec) == 2:
            n += 1
            k += dec["energy"][0] < dec["l1"][0]
            detail.append(f"{kind}: decline to {dec['energy'][1] * 100:g} % dilation: Energy {_fmt(dec['energy'][0])}, "
                          f"L1 {_fmt(dec['l1'][0])}")
    return _verdict(k, n), "; ".join(detail) or "no Energy/L1 pairs", crit


def claim_r9(ctx: RenderContext) -> tuple[str, str, str]:
    crit = ("B-cos, Energy: guiding at each deeper tap raises input-level best EPG (F1 drop <= 5 p.p.) over "
            "the baseline AND trains faster than guiding at the input (step-time speed-up > 1 in the tracked "
            "record of benchmarks/bench_layers.py, measured side by side in one process)")
    if not ctx.has_group("voc-layers"):
        return "no results", "voc-layers missing", crit
    df = ctx.metrics("voc-layers")
    g = match(guided(df), {"model_kind": "bcos", "loss": "energy"})
    tap_speedups(ctx, g)  # the runs' wall clocks -> <results>/<profile>/timings/mg.claims.csv (untracked)
    record = layer_speedup_record()
    speed = record["speedup_vs_input"] if record else {}
    k = n = 0
    detail = []
    for tap in ("mid1", "mid2", "mid3", "final"):
        cfg = g[g["config_tap"] == tap]
        if cfg.empty:
            continue
        r = best_at_drop(df, cfg, "epg", eval_tap="input")
        if r is None or np.isnan(r[0]):
            continue
        n += 1
        fast = speed.get(tap)
        k += bool(r[0] > r[2]) and (fast is None or fast > 1.0)
        detail.append(f"{tap}: input EPG {_fmt(r[2])}->{_fmt(r[0])}"
                      + (f", speed-up {fast:.2f}x" if fast is not None else ""))
    if record is None:
        detail.append("no step-time record (`make bench-layers`): speed-up not judged")
    else:
        detail.append(f"speed-ups: {record['model']}, {record['device']}, {record['date']} ({record['path']})")
    return _verdict(k, n), "; ".join(detail) or "no deeper-tap runs", crit


def claim_w(ctx: RenderContext) -> tuple[str, str, str]:
    crit = "B-cos, input: Energy and L1 raise worst-group (G3) and overall test accuracy over the baseline, both settings"
    if not ctx.has_group("waterbirds"):
        return "no results", "waterbirds missing", crit
    runs = waterbirds_runs(ctx)
    runs = runs[runs["model_kind"] == "bcos"]
    k = n = 0
    detail = []
    for setting in ("conventional", "reversed"):
        base = runs[(runs["row"] == "baseline") & (runs["setting"] == setting)]
        if base.empty:
            continue
        for loss in ("energy", "l1"):
            r = runs[(runs["row"] == f"input {loss}") & (runs["setting"] == setting)]
            if r.empty:
                continue
            for col in ("g3", "overall"):
                n += 1
                ok = r[col].mean() > base[col].mean()
                k += ok
                detail.append(f"{setting}/{loss}/{col}: {base[col].mean():.1f}->{r[col].mean():.1f}")
    return _verdict(k, n), "; ".join(detail) or "no baseline/guided pairs", crit


CHECKS: dict[str, Callable[[RenderContext], tuple[str, str, str]]] = {
    "R1": claim_r1, "R2": claim_r2, "R3": claim_r3, "R4": claim_r4, "R5": claim_r5, "R6": claim_r6,
    "R7": claim_r7, "R8": claim_r8, "R9": claim_r9, "W": claim_w,
}


#: the groups each claim reads (for its operating-point column)
CLAIM_GROUPS: dict[str, tuple[str, ...]] = {
    "R1": ("voc-main", "coco-main", "voc-backbones"), "R2": ("voc-main", "coco-main", "voc-backbones"),
    "R3": ("voc-main",), "R4": ("voc-main",), "R5": ("voc-main", "coco-main"), "R6": ("voc-main", "coco-main"),
    "R7": ("voc-limited",), "R8": ("voc-dilation",), "R9": ("voc-layers",), "W": ("waterbirds",),
}


def _op_cell(ctx: RenderContext, groups: Sequence[str], limit: int = 4) -> str:
    """Operating-point status of the guided runs of `groups` (`figures.operating_point`)."""
    checks = operating_point.group_checks(ctx, groups)
    if not checks:
        return "no guided runs"
    miss = sorted(r for r, c in checks.items() if not c.ok)
    if not miss:
        return f"all {len(checks)} guided runs reach it"
    shown = "; ".join(f"{r} ({checks[r].measured})" for r in miss[:limit])
    more = f"; and {len(miss) - limit} more" if len(miss) > limit else ""
    return f"{operating_point.MARK} {len(miss)} of {len(checks)} guided runs miss it: {shown}{more}"


def _reason_w(ctx: RenderContext) -> str:
    """Measured: B-cos Waterbirds pairs whose baseline is already at 100 % (nothing to raise), and how
    well the baselines solve the validation split they are selected on."""
    runs = waterbirds_runs(ctx)
    runs = runs[runs["model_kind"] == "bcos"]
    base = runs[runs["row"] == "baseline"]
    ceil = [f"{r['setting']}/{c}" for _, r in base.iterrows() for c in ("g3", "overall") if r[c] >= 100.0 - 1e-9]
    parts = [f"baseline already at 100 % (no room to improve): {', '.join(ceil)}"] if ceil else []
    df = ctx.metrics("waterbirds")
    val = df[(df["split"] == "val") & df["is_baseline"] & df["selected"] & (df["model_kind"] == "bcos")]
    for _, r in val.drop_duplicates("run_id").iterrows():
        wg = r.get("worst_group_acc")
        wg_txt = "" if wg is None or (isinstance(wg, float) and np.isnan(wg)) else f", worst group {wg * PCT:.1f}"
        parts.append(f"{r.get('task')} baseline val acc {r['accuracy'] * PCT:.1f}{wg_txt} at its selected epoch")
    return "; ".join(parts)


#: claim id -> measured reason it may not hold (computed from results; "" when none is known)
REASONS: dict[str, Callable[[RenderContext], str]] = {"W": _reason_w}


@register("mg.claims", kind="table", groups=[],
          protocol=mg_protocol(
              "Sec. 5 (R1-R9), Sec. 5.5",
              "For easier reference, we label our individual findings as R1-R9.",
              "voc-main",
              "coco-main",
              "voc-backbones",
              "voc-layers",
              "voc-limited",
              "voc-dilation",
              "waterbirds",
              notes=(
                  "R9 is judged on EPG (voc-layers) and the speed-up per tap "
                  "(benchmarks/recorded/layer_speedup_*.json)",)))
def claims(ctx: RenderContext) -> Table:
    rows: list[dict[str, Any]] = []
    for cid, check in CHECKS.items():
        verdict, ours, crit = check(ctx)
        info = paper.CLAIMS[cid]
        op = _op_cell(ctx, CLAIM_GROUPS[cid])
        reason = ""
        if verdict not in ("holds", "no results"):
            reason = operating_point.reason(ctx, REASONS.get(cid), op,
                                            "some runs of its groups miss their operating point (see that column)")
        mark = operating_point.MARK if op.startswith(operating_point.MARK) else ""
        rows.append({"claim": f"{cid}{mark}", "statement": info["text"], "criterion": crit, "verdict": verdict,
                     "ours": ours, "paper": info["paper"], "figures": ", ".join(info["figures"]),
                     "operating point": op, operating_point.REASON_COLUMN: reason})
    return Table(operating_point.claim_frame(rows), title=f"mg.claims: the paper's findings on our results ({ctx.profile})", notes=[
        "Verdicts use the fixed criteria in the 'criterion' column on TEST metrics of the checkpoints selected "
        "on validation; numbers in percent points. A claim that does not hold on these results is reported "
        "as such.",
        f"operating point: {operating_point.MG_CRITERION} (`figures.operating_point`); "
        f"{operating_point.MARK} marks a claim whose groups have runs that miss it",
    ])
