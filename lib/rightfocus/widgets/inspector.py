"""`HeatmapInspector`: the ipywidgets front end of `InspectorState` (the logic lives there;
`match_options` only combines its filters for the "matches" dropdown).

Every control writes one selection into the state and redraws; the drawn view is kept in
`last_view` and the PNG shown in `image` (what tests look at).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rightfocus.models.taps import TAPS
from rightfocus.units import points
from rightfocus.widgets.render import png_width
from rightfocus.widgets.state import CLASSIFIER_TAP, InspectorState, View, readout_choices

#: the value of a dropdown's "no choice" option ("any" filter, the ground-truth class): a dropdown whose
#: value is None shows a blank box, so the widgets hold this sentinel and the state gets None
NONE = -1
ANY = ("any", NONE)  # the "no filter" option of a dropdown
GROUND_TRUTH = ("ground truth", NONE)
#: slider position "the checkpoint's own masks" (a slider cannot hold None)
CHECKPOINT_MASKS = ("checkpoint", NONE)
CMAPS = ("jet", "viridis", "inferno", "magma", "coolwarm", "gray")
STYLE = {"description_width": "initial"}  # labels at their own width, never cut off


def match_options(state: InspectorState, cls: int | None, group: int | None,
                  epg_range: tuple[float, float] | None, by_change: bool) -> list[tuple[str, int]]:
    """The "matches" dropdown's (label, image index) options: images with class `cls`, in `group`, with
    per-image EPG in `epg_range`; `by_change` (two runs or more): ranked by EPG change, first -> last run."""
    keep = state.filter_images(cls, group, epg_range)
    if by_change and len(state.runs) > 1:
        ranked = state.epg_change()
        ranked = ranked[ranked["index"].isin(keep)]
        return [(f"{int(i)} (ΔEPG {points(d)})", int(i)) for i, d in zip(ranked["index"], ranked["change"])]
    return [(str(i), i) for i in keep]


class HeatmapInspector:
    """Widgets to pick runs, split, image (browse or filter), class, method, tap, overlay, AIM epoch.

    ``HeatmapInspector(state)`` or ``HeatmapInspector.from_results("results", "demo", runs=[...])``;
    show it with `display(inspector.ui)` (or just `inspector.ui` as a cell's last line).
    """

    def __init__(self, state: InspectorState) -> None:
        import ipywidgets as W

        self.state = state
        self.last_view: View | None = None
        self.last_error: str | None = None
        self._muted = False
        self._make_browse_controls(W)
        self._make_view_controls(W)
        self._refresh_choices()
        self._wire()
        self.ui = self._layout(W)
        s = state
        if s.runs:
            self.refresh()
        else:  # say what is there to choose from, or where nothing was found
            self.status.value = (f"choose runs above ({len(self.runs.options)} under {s.results / s.profile})"
                                 if self.runs.options else s.nothing_found())

    def _make_browse_controls(self, W: Any) -> None:
        """Store, runs, split, image and the image filters."""
        s, style = self.state, STYLE
        self.results = W.Text(value=str(s.results), description="results", style=style)
        self.profile = W.Text(value=s.profile, description="profile", style=style)
        self.reload = W.Button(description="load runs")
        self.runs = W.SelectMultiple(options=s.available_runs(), value=tuple(s.runs), description="runs",
                                     rows=6, layout=W.Layout(width="95%"), style=style)
        self.split = W.Dropdown(options=["val", "test"], value=s.split, description="split", style=style)
        self.index = W.BoundedIntText(value=s.index, min=0, max=max(s.num_images - 1, 0) if s.runs else 0,
                                      description="image", style=style)
        self.prev = W.Button(description="◀", layout=W.Layout(width="40px"))
        self.next = W.Button(description="▶", layout=W.Layout(width="40px"))
        self.filter_class = W.Dropdown(options=[ANY], value=NONE, description="has class", style=style)
        self.filter_group = W.Dropdown(options=[ANY] + [(str(g), g) for g in range(4)], value=NONE,
                                       description="group", style=style)
        self.filter_epg = W.FloatRangeSlider(value=(0.0, 100.0), min=0.0, max=100.0, step=5.0, description="EPG (%)",
                                             style=style)
        self.use_epg = W.Checkbox(value=False, description="filter by EPG (first run)", indent=False,
                                  layout=W.Layout(width="auto"))
        self.by_change = W.Checkbox(value=False, description="sort by EPG change (first → last run)", indent=False,
                                    layout=W.Layout(width="auto"))
        self.matches = W.Dropdown(options=[], description="matches", style=style)

    def _make_view_controls(self, W: Any) -> None:
        """Class, attribution, overlay, readout, AIM epoch, guidance signal, export, status and image."""
        from rightfocus.attributions import METHODS

        s, style = self.state, STYLE
        self.target = W.Dropdown(options=[GROUND_TRUTH], value=NONE, description="class", style=style)
        self.method = W.Dropdown(options=list(METHODS), value=s.method, description="method", style=style)
        self.tap = W.Dropdown(options=[CLASSIFIER_TAP, *TAPS], value=s.tap, description="tap", style=style)
        self.alpha = W.FloatSlider(value=s.alpha, min=0.0, max=1.0, step=0.05, description="alpha", style=style)
        self.cmap = W.Dropdown(options=list(CMAPS), value=s.cmap, description="colormap", style=style)
        self.readout = W.SelectMultiple(options=[(f"{v} ({k})", k) for k, v in readout_choices().items()],
                                        value=tuple(s.readout), description="metrics", rows=3, style=style)
        self.mask_epoch = W.SelectionSlider(options=[CHECKPOINT_MASKS], value=CHECKPOINT_MASKS[1],
                                            description="AIM epoch", style=style)
        self.show_guidance = W.Checkbox(value=s.show_guidance, description="show guidance signal (box / mask / teacher)",
                                        indent=False, layout=W.Layout(width="auto"))
        self.export_path = W.Text(value="inspector.png", description="export to", style=style)
        self.export = W.Button(description="export PNG")
        self.status = W.HTML()
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%"))

    def _layout(self, W: Any) -> Any:
        return W.VBox([
            W.HBox([self.results, self.profile, self.reload]), self.runs,
            W.HBox([self.split, self.index, self.prev, self.next]),
            W.HBox([self.filter_class, self.filter_group, self.use_epg, self.filter_epg]),
            W.HBox([self.by_change, self.matches]),
            W.HBox([self.target, self.method, self.tap]),
            W.HBox([self.alpha, self.cmap, self.mask_epoch]), self.show_guidance, self.readout,
            W.HBox([self.export_path, self.export]), self.status, self.image,
        ])

    @classmethod
    def from_results(cls, results: str | Path = "results", profile: str = "demo", runs: Sequence[str] = (),
                     **options: Any) -> "HeatmapInspector":
        return cls(InspectorState(results, profile, runs, **options))

    # ---- wiring --------------------------------------------------------------------------------
    def _wire(self) -> None:
        self.reload.on_click(lambda _: self._reload())
        self.runs.observe(lambda ch: self._on_runs(ch["new"]), names="value")
        for name in ("split", "index", "target", "method", "tap", "alpha", "cmap", "mask_epoch", "show_guidance",
                     "readout"):
            getattr(self, name).observe(lambda ch, n=name: self._on_select(n, ch["new"]), names="value")
        for w in (self.filter_class, self.filter_group, self.filter_epg, self.use_epg, self.by_change):
            w.observe(lambda ch: self._apply_filter(), names="value")
        self.matches.observe(lambda ch: ch["new"] is not None and self._set_index(ch["new"]), names="value")
        self.prev.on_click(lambda _: self._step(-1))
        self.next.on_click(lambda _: self._step(+1))
        self.export.on_click(lambda _: self.export_png(self.export_path.value))

    def _reload(self) -> None:
        self.state = InspectorState(self.results.value, self.profile.value, data_root=self.state.data_root,
                                    checkpoint=self.state.checkpoint, device=self.state.device)
        self._muted = True
        self.runs.options = self.state.available_runs()
        self._muted = False
        note = self.state.skipped_note()
        self.status.value = (f"{len(self.runs.options)} runs under {self.state.results / self.profile.value}"
                             if self.runs.options else self.state.nothing_found()) + (f"; {note}" if note else "")

    def _on_runs(self, runs: Sequence[str]) -> None:
        if self._muted or not runs:
            return
        self._guard(lambda: self.state.set_runs(runs))
        self._refresh_choices()
        self.refresh()

    def _on_select(self, name: str, value: Any) -> None:
        if self._muted or not self.state.runs:
            return
        if (name == "mask_epoch" and value == CHECKPOINT_MASKS[1]) or (name == "target" and value == NONE):
            value = None
        ok = self._guard(lambda: self.state.select(**{name: value}))
        if name == "split" and ok:
            self._refresh_choices()
        if ok:
            self.refresh()

    def _set_index(self, index: int) -> None:
        self.index.value = int(index)  # fires _on_select

    def _step(self, delta: int) -> None:
        options = [v for _, v in self.matches.options] if self.matches.options else None
        if options:
            pos = options.index(self.state.index) if self.state.index in options else -1
            self.matches.value = options[(pos + delta) % len(options)]
        else:
            self._set_index((self.state.index + delta) % max(self.state.num_images, 1))

    def _apply_filter(self) -> None:
        if self._muted or not self.state.runs:
            return
        cls, group = (None if w.value == NONE else w.value for w in (self.filter_class, self.filter_group))
        epg_range = tuple(v / 100.0 for v in self.filter_epg.value) if self.use_epg.value else None  # % -> fraction
        options: list[tuple[str, int]] = []
        self._guard(lambda: options.extend(match_options(self.state, cls, group, epg_range, self.by_change.value)))
        self._muted = True
        self.matches.options = options
        self.matches.value = None
        self._muted = False
        self.status.value = f"{len(options)} matching images"

    def _refresh_choices(self) -> None:
        """Options that depend on the runs / split: image range, class names, AIM epochs."""
        s = self.state
        if not s.runs:
            return
        self._muted = True
        try:
            names = s.class_names
            self.index.max = max(s.num_images - 1, 0)
            self.target.options = [GROUND_TRUTH] + [(n, k) for k, n in enumerate(names)]
            self.filter_class.options = [ANY] + [(n, k) for k, n in enumerate(names)]
            epochs = sorted({e for r in s.runs if s.is_aim(r) for e in s.mask_epochs(r)})
            self.mask_epoch.options = [CHECKPOINT_MASKS] + [(f"epoch {e}", e) for e in epochs]
            self.method.value, self.tap.value = s.method, s.tap
        finally:
            self._muted = False

    def _guard(self, action) -> bool:
        """Run `action`; a bad selection shows its message instead of raising inside a callback."""
        try:
            action()
            self.last_error = None
            return True
        except (ValueError, KeyError, IndexError, FileNotFoundError) as exc:
            self.last_error = str(exc)
            self.status.value = f"<span style='color:#b00'>{exc}</span>"
            return False

    # ---- drawing -------------------------------------------------------------------------------
    def refresh(self) -> View | None:
        """Recompute the view and redraw (the PNG goes to `self.image`)."""
        def draw() -> None:
            view = self.state.view()
            self.image.value = self.state.png()
            self.image.layout.width = f"{png_width(self.image.value)}px"  # natural size, never stretched
            self.last_view = view

        if self._guard(draw):
            c = self.state.cache
            self.status.value = f"cache: {len(c)} entries, {c.hits} hits, {c.misses} misses"
        return self.last_view

    def export_png(self, path: str | Path) -> Path:
        out = self.state.export_png(path)
        self.status.value = f"saved {out}"
        return out
