"""Interactive figures that work both in a live kernel and in the built HTML book.

``interactive_figure(draw, alt=..., depth=[8, 20, 56])`` draws one frame per combination of
parameter values, once, and returns a display object whose mime bundle holds both views:

- ``application/vnd.jupyter.widget-view+json``: one ipywidgets ``SelectionSlider`` per parameter
  above an ``Image`` of the precomputed frame (Jupyter, JupyterLab, Colab, VS Code; only API
  shared by ipywidgets 7.7 and 8). Moving a slider swaps frames; nothing is redrawn.
- ``text/html``: the same frames as base64 PNGs, a labelled ``<input type=range>`` with a readout
  per parameter, and a small inline script that swaps the image. No kernel, nothing external.
- ``text/plain``: one line that names the parameters.

The book's ``_config.yml`` makes myst-nb prefer ``text/html`` over the widget view for the HTML
builders (``nb_mime_priority_overrides``) and load no widget JavaScript (``nb_ipywidgets_js: {}``).

Page weight: a chapter page stays within 3 MB; one figure within ``budget_bytes`` (1 MB by
default, else ``ValueError`` while drawing). That is its HTML plus the first frame once more (the
executor saves the live widget's state, ~5 kB plus that frame, into the notebook; myst-nb copies it
into the page). A book-style line plot (6.4 x 3.8 in, 100 dpi, 256 colours) takes ~18 kB a frame:
6 frames make ~145 kB of HTML and ~30 kB of widget state.
"""
from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import string
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from ._checks import check_int

FIGURE_BUDGET_BYTES = 1_000_000  # per figure; a chapter page holds at most ~3 MB of figures
DPI = 150  # as resbook.plots.FIGURE_DPI: sharp on high-density screens
MAX_DPI = 600
MAX_PIXELS = 16_000_000  # a frame of 4000 × 4000 pixels: ~64 MB while drawn, far beyond any page
_FIGURE_NUMBERS = itertools.count(1)  # figures drawn in this kernel, in order
COLORS = 256

# Runs in the page: slider positions -> frame index (C order, like itertools.product).
_SCRIPT = """(function () {
  const root = document.getElementById("ROOT_ID"), data = DATA;
  const img = root.querySelector("img"), inputs = root.querySelectorAll("input[type=range]");
  data.frames[0] = img.getAttribute("src");
  function show() {
    let index = 0;
    inputs.forEach(function (input, k) {
      const label = data.labels[k][input.value];
      index = index * data.labels[k].length + Number(input.value);
      input.setAttribute("aria-valuetext", label);
      document.getElementById(input.id + "-value").textContent = label;
    });
    img.src = data.frames[index]; img.alt = data.alts[index];
  }
  inputs.forEach(function (input) { input.addEventListener("input", show); });
})();"""


def _value_list(name: str, values: Any) -> list:
    """The allowed values of parameter ``name`` as a list, in the order the slider shows them."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"parameter {name} must be a sequence of values (list, tuple, 1-D array), "
                        f"got {type(values).__name__} {values!r}")
    if len(values) == 0:
        raise ValueError(f"parameter {name} must have at least one value, got {values!r}")
    labels = [_label(v) for v in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"parameter {name} has values that read the same: {labels}")
    return list(values)


def _label(value: Any) -> str:
    """How a value reads on the slider: floats compactly (0.1, 1e-05), everything else as str."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _png(figure: Figure, dpi: int, colors: int | None) -> bytes:
    """The figure as PNG bytes at a fixed size (no tight bbox: every frame has the same size),
    reduced to a palette of ``colors`` colours when opaque (about 3x smaller, looks the same)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    image = Image.open(buffer)
    if colors is None or image.mode != "RGBA" or image.getextrema()[3][0] < 255:
        return buffer.getvalue()
    palette = image.convert("RGB").quantize(colors, method=0, dither=0)  # median cut, no dither
    small = io.BytesIO()
    palette.save(small, format="PNG", optimize=True)
    return min(buffer.getvalue(), small.getvalue(), key=len)


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels, read from the PNG header (IHDR)."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


class InteractiveFigure:
    """Precomputed frames of a figure over a grid of parameter values, shown with sliders."""

    def __init__(self, parameters: dict[str, list], frames: list[bytes], alts: list[str]):
        self.parameters, self.frames, self.alts = parameters, frames, alts
        self.html = _frames_html(parameters, frames, alts)
        self._widget = None

    def __repr__(self) -> str:
        grid = ", ".join(f"{name} in {list(map(_label, values))}"
                         for name, values in self.parameters.items())
        return f"<interactive figure: {len(self.frames)} frames, {grid}>"

    def widget(self):
        """The live view: a slider per parameter above the current frame (built on first use)."""
        if self._widget is None:
            import ipywidgets as widgets

            sliders = [widgets.SelectionSlider(options=[(_label(v), v) for v in values],
                                               value=values[0], description=name,
                                               style={"description_width": "initial"})
                       for name, values in self.parameters.items()]
            image = widgets.Image(value=self.frames[0], format="png",  # never wider than drawn
                                  layout=widgets.Layout(max_width=f"{_png_size(self.frames[0])[0]}px"))
            sizes = [len(values) for values in self.parameters.values()]

            def show_frame(_change=None):
                image.value = self.frames[int(np.ravel_multi_index([s.index for s in sliders], sizes))]

            for slider in sliders:
                slider.observe(show_frame, names="index")
            self._widget = widgets.VBox([*sliders, image])
        return self._widget

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        view = {"model_id": self.widget().model_id, "version_major": 2, "version_minor": 0}
        return {"application/vnd.jupyter.widget-view+json": view,
                "text/html": self.html, "text/plain": repr(self)}


def _frames_html(parameters: dict[str, list], frames: list[bytes], alts: list[str]) -> str:
    """The no-kernel view: the first frame, a labelled range slider and readout per parameter,
    and the script that swaps frames (frame 0 lives only in the img, not twice)."""
    # Ids from the content and the figure's place in the kernel's run, not at random: unique on a
    # page, and the same page on every build.
    content = hashlib.sha256(b"".join(frames) + "".join(alts).encode()).hexdigest()[:12]
    uid = f"resbook-fig-{next(_FIGURE_NUMBERS)}-{content}"
    width, height = _png_size(frames[0])
    sources = ["data:image/png;base64," + base64.b64encode(frame).decode() for frame in frames]
    first, sources[0] = sources[0], None
    controls = []
    for k, (name, values) in enumerate(parameters.items()):
        first_label = escape(_label(values[0]))
        controls.append(
            f'<div><label for="{uid}-{k}">{escape(name)}</label> '
            f'<input type="range" id="{uid}-{k}" min="0" max="{len(values) - 1}" step="1" '
            f'value="0" aria-valuetext="{first_label}"> '
            f'<output id="{uid}-{k}-value" for="{uid}-{k}" aria-live="polite">{first_label}</output></div>')
    data = json.dumps({"frames": sources, "alts": alts,  # "<" escaped: no "</script>" inside
                       "labels": [[_label(v) for v in values] for values in parameters.values()]}
                      ).replace("<", "\\u003c")
    script = _SCRIPT.replace("ROOT_ID", uid).replace("DATA", data)
    return (f'<div class="resbook-interactive" id="{uid}">\n'
            f'<img src="{first}" alt="{escape(alts[0])}" width="{width}" height="{height}" '
            f'style="max-width: 100%; height: auto;">\n'
            + "\n".join(controls) + f"\n<script>\n{script}\n</script>\n</div>")


def interactive_figure(draw: Callable[..., Figure], *, alt: str, budget_bytes: int = FIGURE_BUDGET_BYTES,
                       dpi: int = DPI, colors: int | None = COLORS,
                       **parameters: Sequence) -> InteractiveFigure:
    """Draw ``draw(**values)`` for every combination of the parameters' values and return a figure
    the reader moves through with one slider per parameter (live widgets or, in the book, HTML).

    Args:
        draw: returns a new matplotlib ``Figure`` for one combination of values; it is closed here.
        alt: text alternative for each frame, a ``str.format`` template over the parameters,
            e.g. ``"Training loss of nets of depth {depth}"``.
        budget_bytes: the most HTML the figure may weigh; exceeding it raises ``ValueError``.
        dpi: resolution of the frames.
        colors: size of the palette the frames are reduced to (2–256); ``None`` keeps every colour.
        **parameters: name -> the values the slider offers, in order; the first is shown first.
    """
    import matplotlib.pyplot as plt

    if not callable(draw):
        raise TypeError(f"draw must be callable (values -> Figure), got {type(draw).__name__} {draw!r}")
    if not isinstance(alt, str) or not alt.strip():
        raise ValueError(f"alt must be a non-empty str describing the figure, got {alt!r}")
    budget_bytes = check_int("budget_bytes", budget_bytes, 1)
    dpi = check_int("dpi", dpi, 1, MAX_DPI)
    if colors is not None:
        colors = check_int("colors", colors, 2, 256)
    if not parameters:
        raise ValueError("interactive_figure needs at least one parameter, e.g. depth=[8, 20, 56]")
    parameters = {name: _value_list(name, values) for name, values in parameters.items()}
    combinations = [dict(zip(parameters, combo)) for combo in itertools.product(*parameters.values())]
    alts = _alt_texts(alt, parameters, combinations)
    frames, weight = [], 0  # bytes of base64 in the page; the first frame counts twice (see above)
    for values in combinations:
        figure = draw(**values)
        if not isinstance(figure, Figure):
            raise TypeError(f"draw must return a matplotlib Figure, got {type(figure).__name__} "
                            f"for {values}")
        _check_pixels(figure, dpi)
        frames.append(_png(figure, dpi, colors))
        plt.close(figure)
        weight += (len(frames[-1]) + 2) // 3 * 4 * (2 if len(frames) == 1 else 1)
        _check_budget(weight, budget_bytes, f"its first {len(frames)} of {len(combinations)} frames")
    figure = InteractiveFigure(parameters, frames, alts)
    weight = len(figure.html.encode()) + (len(frames[0]) + 2) // 3 * 4
    _check_budget(weight, budget_bytes, "its HTML and widget state")
    return figure


def _alt_texts(alt: str, parameters: dict[str, list], combinations: list[dict]) -> list[str]:
    """``alt`` filled in for every combination; a field must be a parameter's name, e.g. ``{depth}`` or
    ``{lr:g}`` (no attributes or indices such as ``{depth.real}``), else ``ValueError`` naming ``alt``."""
    allowed = " ".join("{" + name + "}" for name in parameters)
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(alt) if field is not None]
        unknown = [field for field in fields if field not in parameters]
        if unknown:
            raise ValueError(f"{{{unknown[0]}}} is not one of them")
        return [alt.format(**values) for values in combinations]
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"alt {alt!r} must name only the parameters ({', '.join(parameters)}) in braces, "
                         f"as {allowed}, with a format such as {{name:g}} if wanted: {error}") from None


def _check_pixels(figure: Figure, dpi: int) -> None:
    """Refuse a frame of more than :data:`MAX_PIXELS` pixels before it is rendered."""
    width, height = figure.get_size_inches() * dpi
    if width * height > MAX_PIXELS:
        import matplotlib.pyplot as plt

        plt.close(figure)
        raise ValueError(f"a frame of {width:.0f} × {height:.0f} pixels (figure size × dpi={dpi}) is more than "
                         f"{MAX_PIXELS:,} pixels: lower dpi or the figure size that draw gives")


def _check_budget(weight: int, budget_bytes: int, what: str) -> None:
    if weight > budget_bytes:
        raise ValueError(f"interactive figure exceeds budget_bytes={budget_bytes}: {what} weigh "
                         f"{weight} bytes; offer fewer values, a smaller figure or a lower dpi")
