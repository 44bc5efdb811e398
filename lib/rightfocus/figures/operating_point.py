"""Operating-point checks: does the mechanism under test actually engage in a run? Computed from each
run's own metrics rows (``store.load_metrics`` / ``RenderContext.metrics``), never from the papers.

- AIM run (``model_kind == "aim"`` with a threshold): the validation masks' mean active share at the
  last training epoch is within `AIM_TOLERANCE` of the run's tau (the operating point AIM is defined at).
- Model-guidance run (a localisation loss): the training localisation loss falls from the first to
  the last guided epoch, and the validation EPG (at the run's own tap and method) at the last epoch
  differs from its baseline's (epoch 0 of the run) by at least `MG_MIN_EPG_MOVE`.

Runs without a mechanism (baselines, AIM without annealing) are not checked. Tables and figures mark
the runs that miss with `MARK` and print `footnotes` under themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pandas as pd

from rightfocus.figures import MissingResults, RenderContext

#: AIM: |final validation active share - tau| allowed (fractions; 0.05 = 5 points)
AIM_TOLERANCE = 0.05
#: MG: smallest |guided EPG - baseline EPG| (fraction) that counts as "guidance moved EPG"
MG_MIN_EPG_MOVE = 0.005
#: the marker of a run that misses its operating point, in tables and figure labels
MARK = "†"
#: the column both claims tables give the measured reason a claim does not hold in
REASON_COLUMN = "measured reason (if it does not hold)"
#: the column order both claims tables share (each has the columns it fills, in this order)
CLAIM_COLUMNS = ("claim", "statement", "criterion", "verdict", "ours", "paper", "figures", "operating point",
                 REASON_COLUMN)

AIM_CRITERION = (f"AIM: validation mean active share at the last epoch within {AIM_TOLERANCE * 100:g} "
                 "points of tau")
MG_CRITERION = ("model guidance: training localisation loss falls from the first to the last guided epoch "
                f"and validation EPG moves by >= {MG_MIN_EPG_MOVE * 100:g} points from its baseline")


@dataclass(frozen=True)
class Check:
    """One run's operating-point check: `ok`, and what was measured (a short text with numbers)."""

    run_id: str
    paper: str
    ok: bool
    measured: str


def claim_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A claims table's rows as a frame with its columns in `CLAIM_COLUMNS` order."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    unknown = [k for k in keys if k not in CLAIM_COLUMNS]
    if unknown:
        raise ValueError(f"claims columns {unknown} are not in CLAIM_COLUMNS {list(CLAIM_COLUMNS)}")
    return pd.DataFrame(rows, columns=[c for c in CLAIM_COLUMNS if c in keys])


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)


def aim_check(rows: pd.DataFrame) -> Check | None:
    """The check of one AIM run's metrics rows; None for baselines and runs without a threshold."""
    first = rows.iloc[0]
    tau = _num(_col(rows, "extra.tau").iloc[0])
    if first.get("model_kind") != "aim" or math.isnan(tau):
        return None
    val = rows[(rows["split"] == "val") & _col(rows, "mask_active").notna()]
    if val.empty:
        return Check(str(first["run_id"]), "aim", False, "no validation mask activity recorded")
    last = val.sort_values("epoch").iloc[-1]
    share = float(last["mask_active"])
    ok = abs(share - tau) <= AIM_TOLERANCE + 1e-12
    return Check(str(first["run_id"]), "aim", ok,
                 f"active {share * 100:.1f}% vs tau {tau * 100:g}% at epoch {int(last['epoch'])}")


def mg_check(rows: pd.DataFrame) -> Check | None:
    """The check of one guided model-guidance run's metrics rows; None for baselines."""
    first = rows.iloc[0]
    if bool(first.get("is_baseline", False)) or _num(first.get("lam")) == 0:
        return None
    rid = str(first["run_id"])
    tap, method = first.get("config_tap"), first.get("config_method")
    val = rows[rows["split"] == "val"]
    own = val[(val["tap"] == tap) & (val["method"] == method)]
    loc = own[(own["epoch"] >= 1) & _col(own, "train_loc").notna()].sort_values("epoch")
    base = own[own["epoch"] == 0]
    if len(loc) < 2 or base.empty:
        return Check(rid, "mg", False, "fewer than 2 guided epochs or no baseline row (epoch 0)")
    l0, l1 = float(loc["train_loc"].iloc[0]), float(loc["train_loc"].iloc[-1])
    e0, e1 = float(base["epg"].iloc[0]), float(loc["epg"].iloc[-1])
    falls, moves = l1 < l0, abs(e1 - e0) >= MG_MIN_EPG_MOVE - 1e-12
    return Check(rid, "mg", falls and moves,
                 f"loc loss {l0:.4g} -> {l1:.4g}; val EPG {e0 * 100:.1f} -> {e1 * 100:.1f}")


def checks(metrics: pd.DataFrame) -> dict[str, Check]:
    """run_id -> Check for every finished run in `metrics` that has a mechanism to check."""
    out: dict[str, Check] = {}
    if metrics.empty:
        return out
    for rid, rows in metrics.groupby("run_id", sort=True):
        if "done" in rows.columns and not bool(rows["done"].iloc[0]):
            continue  # unfinished: its last epoch is not the end of training
        paper = rows["paper"].iloc[0] if "paper" in rows.columns else "mg"
        c = aim_check(rows) if paper == "aim" else mg_check(rows)
        if c is not None:
            out[str(rid)] = c
    return out


def group_checks(ctx: RenderContext, groups: Iterable[str]) -> dict[str, Check]:
    """Checks of every run of `groups` that have results (cached on the context)."""
    out: dict[str, Check] = {}
    for g in groups:
        key = ("operating_point", g)
        if key not in ctx._cache:
            ctx._cache[key] = checks(ctx.metrics(g)) if ctx.has_group(g) else {}
        out.update(ctx._cache[key])
    return out


def missed(ctx: RenderContext, groups: Iterable[str]) -> dict[str, Check]:
    """The runs of `groups` that miss their operating point."""
    return {rid: c for rid, c in group_checks(ctx, groups).items() if not c.ok}


def mark(label: str, run_ids: Iterable[str], miss: dict[str, Check]) -> str:
    """`label` with `MARK` appended when any of `run_ids` misses its operating point."""
    return f"{label}{MARK}" if any(r in miss for r in run_ids) else label


def footnotes(ctx: RenderContext, groups: Iterable[str], limit: int = 6) -> list[str]:
    """Note lines for a table/figure drawn from `groups`: the criteria and the runs that miss them."""
    allc = group_checks(ctx, groups)
    if not allc:
        return []
    miss = {r: c for r, c in allc.items() if not c.ok}
    papers = sorted({c.paper for c in allc.values()})
    crit = "; ".join(AIM_CRITERION if p == "aim" else MG_CRITERION for p in papers)
    if not miss:
        return [f"operating point ({crit}): all {len(allc)} checked runs reach it"]
    lines = [f"{MARK} {len(miss)} of {len(allc)} checked runs miss their operating point ({crit})"]
    for rid, c in list(sorted(miss.items()))[:limit]:
        lines.append(f"{MARK} {rid}: {c.measured}")
    if len(miss) > limit:
        lines.append(f"{MARK} ... and {len(miss) - limit} more (see the claims table)")
    return lines


def reason(ctx: RenderContext, measure: Callable[[RenderContext], str] | None, op_cell: str,
           missed_text: str) -> str:
    """The measured reason a claim does not hold: `missed_text` first when its operating-point cell
    (`op_cell`) carries `MARK`, then what `measure(ctx)` finds (a claim's own reason function; its
    MissingResults counts as nothing found); "no measured reason known" when neither gives one."""
    found = []
    if op_cell.startswith(MARK):
        found.append(missed_text)
    if measure is not None:
        try:
            found.append(measure(ctx))
        except MissingResults:
            pass
    return "; ".join(f for f in found if f) or "no measured reason known"


def summary_rows(ctx: RenderContext, groups: Iterable[str]) -> pd.DataFrame:
    """One row per group: runs checked, runs reaching the operating point, the criterion."""
    rows = []
    for g in groups:
        c = group_checks(ctx, [g])
        if not c:
            continue
        ok = sum(x.ok for x in c.values())
        papers = sorted({x.paper for x in c.values()})
        rows.append({"group": g, "checked": len(c), "reach": ok, "miss": len(c) - ok,
                     "criterion": "; ".join(AIM_CRITERION if p == "aim" else MG_CRITERION for p in papers)})
    if not rows:
        raise MissingResults("no runs with a mechanism to check")
    return pd.DataFrame(rows)
