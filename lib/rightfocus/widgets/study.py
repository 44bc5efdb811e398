"""Forced-choice perception study (AIM, Alshami et al. 2025, supplement D.6).

A participant sees an image and two attribution maps, one from run ``a`` (paper: vanilla ConvNeXt-tiny)
and one from run ``b`` (paper: AIM), placed left/right at random per trial, and picks the map that
"more accurately and clearly focuses on the main object in the image, and less on irrelevant parts".
The images are split into disjoint subsets (paper: 100 Waterbirds-100 images, 4 subsets of 25); each
participant answers one subset. The summary is the rate at which ``b`` was preferred and a two-sided
binomial test against 0.5 (paper: 70.7 %, p < 1e-5 over 107 x 25 answers).

Everything here is plain Python: the plan of trials is a pure function of (images, runs, participant,
seed); responses are appended to a CSV, one row per answer, flushed and fsynced so that a kernel that
dies mid-study loses nothing; a new `PerceptionStudy` on the same CSV resumes at the next unanswered
trial. The ipywidgets layer (`PerceptionStudy.widget`) only calls `answer`.

CSV schema (`RESPONSE_COLUMNS`, read by the AIM figure renderer for ``aim.study``)::

    participant, subset, trial, image_index, left_run, right_run, choice ("left"|"right"),
    chosen_run, preferred_is_b (bool; b = the second run given = AIM), simulated (bool), timestamp
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

#: columns of a responses CSV, in file order
RESPONSE_COLUMNS: tuple[str, ...] = (
    "participant", "subset", "trial", "image_index", "left_run", "right_run", "choice",
    "chosen_run", "preferred_is_b", "simulated", "timestamp",
)

#: the paper's design (D.6): 100 images in 4 disjoint subsets of 25
PAPER_IMAGES = 100
PAPER_SUBSETS = 4

#: the question asked on every trial (D.6, Fig. 32)
QUESTION = (
    "Which attribution map more accurately and clearly focuses on the main object in the image, "
    "and less on irrelevant parts?"
)

CHOICES = ("left", "right")


def _rng(seed: int, *key: Any) -> np.random.Generator:
    """A generator seeded by `seed` and a key (participant names are strings: hash them stably,
    never with Python's salted `hash`)."""
    digest = hashlib.sha256(repr((int(seed), *key)).encode()).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest[:8], "little")])


# ---- plan ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One forced-choice comparison shown to one participant."""

    participant: str
    subset: int
    trial: int
    image_index: int
    left_run: str
    right_run: str

    def chosen(self, choice: str) -> str:
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
        return self.left_run if choice == "left" else self.right_run


def study_images(num_available: int, n_images: int = PAPER_IMAGES, seed: int = 0) -> list[int]:
    """A seeded random choice of `n_images` dataset positions (sorted) out of `num_available` (D.6 uses
    100 test images; all of them when fewer are available)."""
    if num_available < 1:
        raise ValueError("study_images: the dataset split is empty")
    n = min(int(n_images), int(num_available))
    return sorted(int(i) for i in _rng(seed, "images").choice(num_available, size=n, replace=False))


def split_subsets(image_indices: Sequence[int], n_subsets: int = PAPER_SUBSETS, seed: int = 0) -> list[list[int]]:
    """Randomly partition the images into `n_subsets` disjoint subsets of (near) equal size (D.6)."""
    images = [int(i) for i in image_indices]
    if len(set(images)) != len(images):
        raise ValueError("image_indices contain duplicates; the study's subsets must be disjoint")
    if not 1 <= n_subsets <= max(len(images), 1):
        raise ValueError(f"n_subsets={n_subsets} must lie in [1, number of images={len(images)}]")
    order = _rng(seed, "subsets").permutation(len(images))
    return [sorted(images[j] for j in part) for part in np.array_split(order, n_subsets)]


def subset_for(participant: str, n_subsets: int, seed: int = 0) -> int:
    """The subset a participant is assigned to: random but reproducible from (seed, participant)."""
    return int(_rng(seed, "assign", str(participant)).integers(n_subsets))


def plan_study(
    image_indices: Sequence[int],
    run_a: str,
    run_b: str,
    participant: str,
    n_subsets: int = PAPER_SUBSETS,
    seed: int = 0,
    subset: int | None = None,
) -> list[Trial]:
    """The trials of one participant: their subset's images in a random order, each with a fair coin
    deciding whether run ``b`` is shown left or right ("randomized for every trial", D.6).

    A pure function of its arguments: the same participant and seed always get the same plan.
    """
    if run_a == run_b:
        raise ValueError("run_a and run_b are the same run; the study compares two different runs")
    subsets = split_subsets(image_indices, n_subsets, seed)
    s = subset_for(participant, n_subsets, seed) if subset is None else int(subset)
    if not 0 <= s < n_subsets:
        raise ValueError(f"subset={s} must lie in [0, {n_subsets})")
    rng = _rng(seed, "trials", str(participant))
    images = [subsets[s][j] for j in rng.permutation(len(subsets[s]))]
    b_left = rng.random(len(images)) < 0.5
    return [Trial(str(participant), s, t, int(img), *((run_b, run_a) if bl else (run_a, run_b)))
            for t, (img, bl) in enumerate(zip(images, b_left))]


def response_row(trial: Trial, choice: str, run_b: str, simulated: bool, timestamp: str | None = None) -> dict[str, Any]:
    """The CSV row of one answer."""
    chosen = trial.chosen(choice)
    return {
        "participant": trial.participant, "subset": trial.subset, "trial": trial.trial,
        "image_index": trial.image_index, "left_run": trial.left_run, "right_run": trial.right_run,
        "choice": choice, "chosen_run": chosen, "preferred_is_b": chosen == run_b,
        "simulated": bool(simulated),
        "timestamp": timestamp or datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }


# ---- simulated participant ----------------------------------------------------------------------
def simulate_participant(
    trials: Sequence[Trial],
    epg: Mapping[tuple[int, str], float] | Callable[[int, str], float],
    run_b: str,
    noise: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """Responses of a simulated participant (rows marked ``simulated=True``).

    The participant perceives each map's EPG plus Gaussian noise of standard deviation `noise` and
    picks the map whose perceived EPG is higher (ties: left). `epg` maps (image_index, run_id) to that
    map's EPG (a dict or a function). With ``noise=0`` the higher-EPG map always wins. This stands in
    for human answers only where none were collected; whatever is drawn from it says "simulated".
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    lookup = epg if callable(epg) else (lambda i, r: epg[(i, r)])
    rows = []
    for tr in trials:
        rng = _rng(seed, "simulate", tr.participant, tr.trial)
        left = float(lookup(tr.image_index, tr.left_run)) + noise * rng.standard_normal()
        right = float(lookup(tr.image_index, tr.right_run)) + noise * rng.standard_normal()
        rows.append(response_row(tr, "left" if left >= right else "right", run_b, simulated=True))
    return pd.DataFrame(rows, columns=list(RESPONSE_COLUMNS))


def simulate_study(
    image_indices: Sequence[int],
    run_a: str,
    run_b: str,
    epg: Mapping[tuple[int, str], float] | Callable[[int, str], float],
    n_participants: int,
    n_subsets: int = PAPER_SUBSETS,
    noise: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """Every trial of `n_participants` simulated participants (``sim-000``, ``sim-001``, ...), each
    assigned a subset as a real one would be; for rendering ``aim.study`` without human answers."""
    frames = [
        simulate_participant(plan_study(image_indices, run_a, run_b, f"sim-{p:03d}", n_subsets, seed),
                             epg, run_b, noise=noise, seed=seed)
        for p in range(n_participants)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RESPONSE_COLUMNS))


# ---- reading and summarising --------------------------------------------------------------------
def _as_bool(values: pd.Series) -> pd.Series:
    return values.map(lambda v: v if isinstance(v, (bool, np.bool_)) else str(v).strip().lower() in ("true", "1"))


_BOOL_TEXT = {"true": True, "1": True, "false": False, "0": False}


def _read_responses(f: Path) -> pd.DataFrame:
    """One responses CSV, typed; errors name the file, the line (header = line 1) and the fix."""
    fix = "fix or delete that row (the study re-asks unanswered trials)"
    try:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{f} is empty (not even a header); delete it, the study writes a new one") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{f}: not a readable CSV ({str(exc).strip()}); {fix}") from None
    missing = [c for c in RESPONSE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{f} lacks column(s) {missing}; a responses CSV has {list(RESPONSE_COLUMNS)}")
    df = df[list(RESPONSE_COLUMNS)].copy()
    for col in ("subset", "trial", "image_index"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ValueError(f"{f} line {i + 2}: column {col!r} is {df[col].iloc[i]!r}, expected an integer; {fix}")
        df[col] = values.astype(int)
    for col in ("preferred_is_b", "simulated"):
        text = df[col].str.strip().str.lower()
        bad = ~text.isin(list(_BOOL_TEXT))
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ValueError(f"{f} line {i + 2}: column {col!r} is {df[col].iloc[i]!r}, expected True or False; {fix}")
        df[col] = text.map(_BOOL_TEXT).astype(bool)
    return df


def load_responses(path: str | os.PathLike) -> pd.DataFrame:
    """Responses from one CSV, or from every ``responses*.csv`` in a folder, with typed columns
    (``trial``/``subset``/``image_index`` int, ``preferred_is_b``/``simulated`` bool). A malformed file
    raises ValueError naming the file, the line and the column."""
    path = Path(path)
    files = sorted(path.glob("responses*.csv")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise FileNotFoundError(f"no responses at {path}; run the study (PerceptionStudy) or simulate one")
    return pd.concat([_read_responses(f) for f in files], ignore_index=True)


def summarize(df: pd.DataFrame) -> dict[str, Any]:
    """Preference for run ``b`` (AIM in the paper) with a two-sided exact binomial test against 0.5
    (D.6; `scipy.stats.binomtest`). Returns ``rate`` (k / n), ``n``, ``k``, ``p_value``, ``simulated``
    (True if any row is simulated: label anything drawn from it so)."""
    from scipy.stats import binomtest

    n = int(len(df))
    if n == 0:
        raise ValueError("summarize: no responses yet; answer some trials first")
    k = int(_as_bool(df["preferred_is_b"]).sum())
    return {
        "rate": k / n, "n": n, "k": k,
        "p_value": float(binomtest(k, n, 0.5, alternative="two-sided").pvalue),
        "simulated": bool(_as_bool(df["simulated"]).any()),
    }


# ---- the study ----------------------------------------------------------------------------------
class PerceptionStudy:
    """One participant's session, resumable from its CSV.

    Parameters
    ----------
    image_indices : the study's images (dataset positions); split into `n_subsets` disjoint subsets.
    run_a, run_b : the two runs compared (paper: vanilla ConvNeXt-tiny, AIM); ``b`` is the one whose
        preference rate is reported.
    responses : CSV path answers are appended to (several participants may share one file).
    participant : participant id; with `subset` None the subset is assigned from (seed, participant).
    render : ``render(image_index, run_id) -> (image [H, W, 3] float in [0, 1], heatmap [H, W])`` for the
        figure and the widget (e.g. `InspectorState.study_renderer`); not needed to answer or simulate.
    """

    def __init__(
        self,
        image_indices: Sequence[int],
        run_a: str,
        run_b: str,
        responses: str | os.PathLike,
        participant: str,
        n_subsets: int = PAPER_SUBSETS,
        seed: int = 0,
        subset: int | None = None,
        render: Callable[[int, str], tuple[Any, Any]] | None = None,
    ) -> None:
        self.run_a, self.run_b = run_a, run_b
        self.path = Path(responses)
        self.participant = str(participant)
        self.render = render
        self.trials = plan_study(image_indices, run_a, run_b, self.participant, n_subsets, seed, subset)
        self._answered = self._read_answered()

    def _mine(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows of this participant comparing this pair of runs (a CSV may hold other studies too)."""
        pair = [self.run_a, self.run_b]
        return df[(df.participant == self.participant) & df.left_run.isin(pair) & df.right_run.isin(pair)]

    def _read_answered(self) -> set[int]:
        """Trial numbers already answered (resume after a restart)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return set()
        mine = self._mine(load_responses(self.path))
        planned = {t.trial: (t.image_index, t.left_run) for t in self.trials}
        for row in mine.itertuples():
            if planned.get(int(row.trial)) != (int(row.image_index), row.left_run):
                raise ValueError(
                    f"{self.path}: participant {self.participant!r} answered trial {row.trial} with image "
                    f"{row.image_index} ({row.left_run} left), which is not this study's plan; resume with the "
                    "same images, n_subsets and seed, or use another responses file")
        return set(mine.trial.astype(int))

    # ---- progress ------------------------------------------------------------------------------
    @property
    def answered(self) -> int:
        return len(self._answered)

    @property
    def done(self) -> bool:
        return self.current is None

    @property
    def current(self) -> Trial | None:
        """The next unanswered trial (None when the participant has finished)."""
        return next((t for t in self.trials if t.trial not in self._answered), None)

    # ---- answering -----------------------------------------------------------------------------
    def answer(self, choice: str, simulated: bool = False) -> dict[str, Any]:
        """Record the answer to the current trial: append a row, flush and fsync (survives a dead kernel)."""
        trial = self.current
        if trial is None:
            raise RuntimeError(f"participant {self.participant!r} has answered all {len(self.trials)} trials")
        row = response_row(trial, choice, self.run_b, simulated)
        self._append(row)
        self._answered.add(trial.trial)
        return row

    def _append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(RESPONSE_COLUMNS))
            if new:
                writer.writeheader()
            writer.writerow(row)
            fh.flush()
            os.fsync(fh.fileno())

    def simulate(
        self, epg: Mapping[tuple[int, str], float] | Callable[[int, str], float], noise: float = 0.1, seed: int = 0
    ) -> pd.DataFrame:
        """Answer every remaining trial as `simulate_participant` would (rows marked simulated)."""
        remaining = [t for t in self.trials if t.trial not in self._answered]
        sim = simulate_participant(remaining, epg, self.run_b, noise=noise, seed=seed)
        for choice in sim.choice:
            self.answer(choice, simulated=True)
        return sim

    def responses(self) -> pd.DataFrame:
        """This participant's rows for this pair of runs."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return pd.DataFrame(columns=list(RESPONSE_COLUMNS))
        return self._mine(load_responses(self.path)).reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        return summarize(self.responses())

    # ---- drawing -------------------------------------------------------------------------------
    def figure(self, trial: Trial | None = None, cmap: str = "jet", alpha: float = 0.5, question: bool = True):
        """The trial's layout (Fig. 32): the image, then maps A (left) and B (right); which run is
        which is not shown, as in the study. `question=False` leaves the question out of the title
        (the widget shows it once, above the figure)."""
        from rightfocus.widgets.render import study_figure

        trial = trial or self.current
        if trial is None:
            raise RuntimeError("the study is finished; nothing to show")
        if self.render is None:
            raise ValueError("PerceptionStudy needs render=... (e.g. InspectorState.study_renderer) to draw")
        image, left = self.render(trial.image_index, trial.left_run)
        _, right = self.render(trial.image_index, trial.right_run)
        return study_figure(image, left, right, title=f"trial {trial.trial + 1}/{len(self.trials)}",
                            question=QUESTION if question else "", cmap=cmap, alpha=alpha)

    def widget(self):
        """ipywidgets front end: the figure, two buttons (A = left, B = right) and progress."""
        from rightfocus.widgets.study_widget import study_widget

        return study_widget(self, QUESTION)
