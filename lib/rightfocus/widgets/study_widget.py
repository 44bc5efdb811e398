"""ipywidgets front end of `PerceptionStudy`: the trial figure, buttons A (left) / B (right), progress.
The buttons only call `PerceptionStudy.answer`; everything else lives in study.py (this view never
imports it: `PerceptionStudy.widget()` passes itself and its question)."""

from __future__ import annotations

from typing import Any


def study_widget(study: Any, question: str):
    """The widget of `study` (a `PerceptionStudy`), asking `question`."""
    import io

    import ipywidgets as W

    from rightfocus.widgets.render import png_width, save_png

    image = W.Image(format="png", layout=W.Layout(max_width="100%"))
    progress = W.HTML()
    left = W.Button(description="A (left)", button_style="info")
    right = W.Button(description="B (right)", button_style="info")

    def show() -> None:
        progress.value = f"{study.answered} / {len(study.trials)} answered"
        if study.done:
            s = study.summary()
            progress.value += (f" — finished. Preference for the second run: {s['rate']:.1%} "
                               f"(k={s['k']}, n={s['n']}, two-sided binomial p={s['p_value']:.3g})")
            left.disabled = right.disabled = True
            return
        buf = io.BytesIO()
        save_png(study.figure(question=False), buf)  # the question is shown once, above the figure
        image.value = buf.getvalue()
        image.layout.width = f"{png_width(image.value)}px"  # natural size, never stretched

    def pick(choice: str) -> None:
        study.answer(choice)
        show()

    left.on_click(lambda _: pick("left"))
    right.on_click(lambda _: pick("right"))
    show()
    box = W.VBox([W.HTML(f"<b>{question}</b>"), image, W.HBox([left, right]), progress])
    box.buttons = (left, right)  # for tests and notebooks: click() answers a trial
    return box
