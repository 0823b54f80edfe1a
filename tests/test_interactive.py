"""Facts about interactive figures: one frame per combination of values, a live widget view and a
kernel-free HTML view with labelled sliders, within a page-weight budget."""
import io
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from resbook.interactive import interactive_figure  # noqa: E402
from resbook.plots import use_book_style  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def draw_line(slope, width=1.0):
    """A small figure that differs visibly for every (slope, width)."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, slope], linewidth=width)
    ax.set_ylim(-3, 3)
    return fig


class Tags(HTMLParser):
    """Collects every start tag with its attributes, to check the HTML the reader gets."""

    def __init__(self, html):
        super().__init__()
        self.tags = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def all(self, name):
        return [attrs for tag, attrs in self.tags if tag == name]


def test_bundle_holds_the_widget_view_the_html_view_and_plain_text():
    bundle = interactive_figure(draw_line, slope=[1, 2], alt="slope {slope}")._repr_mimebundle_()
    assert set(bundle) == {WIDGET_VIEW, "text/html", "text/plain"}
    view = bundle[WIDGET_VIEW]
    assert (view["version_major"], view["version_minor"]) == (2, 0) and view["model_id"]


def test_draw_is_called_once_per_combination_in_product_order():
    calls = []

    def draw(slope, width):
        calls.append((slope, width))
        return draw_line(slope, width)

    figure = interactive_figure(draw, slope=[-1, 0, 2], width=[1.0, 3.0], alt="{slope} {width}")
    figure._repr_mimebundle_(), figure._repr_mimebundle_()  # displaying again draws nothing
    assert calls == [(s, w) for s in (-1, 0, 2) for w in (1.0, 3.0)]
    assert figure.alts[1] == "-1 3.0"


def test_html_embeds_one_distinct_frame_per_combination_and_nothing_external():
    figure = interactive_figure(draw_line, slope=[-2, 0, 2], width=[1.0, 4.0], alt="{slope}")
    frames = re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", figure.html)
    assert len(frames) == len(set(frames)) == 6
    assert not re.search(r"https?:|//cdn|<link|@import", figure.html)
    assert len(plt.get_fignums()) == 0  # every frame's figure was closed


def test_every_image_has_alt_text_and_every_slider_a_label_and_a_readout():
    html = interactive_figure(draw_line, slope=[1, 2], width=[0.5, 1.0, 2.0],
                              alt="A line of slope {slope} and width {width}").html
    tags = Tags(html)
    assert [img["alt"] for img in tags.all("img")] == ["A line of slope 1 and width 0.5"]
    sliders = [i for i in tags.all("input") if i.get("type") == "range"]
    assert [(s["min"], s["max"]) for s in sliders] == [("0", "1"), ("0", "2")]
    labelled = {label["for"] for label in tags.all("label")}
    readouts = {output["for"] for output in tags.all("output")}
    assert all(s["id"] in labelled and s["id"] in readouts for s in sliders)
    assert re.findall(r"<output[^>]*>([^<]*)</output>", html) == ["1", "0.5"]


def test_two_figures_on_one_page_use_different_element_ids():
    ids = [{attrs["id"] for _, attrs in Tags(interactive_figure(draw_line, slope=[1], alt="x").html)
            .tags if "id" in attrs} for _ in range(2)]
    assert ids[0] and not ids[0] & ids[1]


def test_live_sliders_show_the_frame_of_the_chosen_values():
    figure = interactive_figure(draw_line, slope=[1, 2], width=[1.0, 2.0, 3.0], alt="{slope}")
    box = figure.widget()
    slope, width, image = box.children
    slope.value, width.value = 2, 3.0
    assert image.value == figure.frames[5]
    assert [o for o, _ in slope.options] == ["1", "2"] and slope.description == "slope"


def test_six_book_style_frames_weigh_well_under_the_default_budget():
    use_book_style()
    noise = np.random.default_rng(0).standard_normal((6, 300)) * 0.05  # noisy curves compress badly

    def draw_loss(depth):
        fig, ax = plt.subplots()
        steps = np.arange(300)
        ax.plot(steps, 2.3 * np.exp(-0.1 * steps / depth) + noise[depth.bit_length() - 2], label="plain")
        ax.plot(steps, 2.3 * np.exp(-0.02 * steps) + noise[0], label="residual")
        ax.set(xlabel="step", ylabel="training loss (nats)", title=f"depth {depth}")
        ax.legend()
        return fig

    figure = interactive_figure(draw_loss, depth=[2, 4, 8, 16, 32, 56], alt="Loss at depth {depth}")
    assert len(figure.html.encode()) < 400_000  # 1 MB is the default budget


def test_frames_over_the_budget_raise():
    with pytest.raises(ValueError, match="budget_bytes=1000"):
        interactive_figure(draw_line, slope=[1, 2, 3], alt="{slope}", budget_bytes=1000)


@pytest.mark.parametrize("draw, kwargs, error, words", [
    ("not callable", dict(slope=[1]), TypeError, "draw must be callable"),
    (draw_line, dict(), ValueError, "at least one parameter"),
    (draw_line, dict(slope=[]), ValueError, "parameter slope must have at least one value"),
    (draw_line, dict(slope=3), TypeError, "parameter slope must be a sequence"),
    (draw_line, dict(slope="123"), TypeError, "parameter slope must be a sequence"),
    (draw_line, dict(slope=[1, 1.0]), ValueError, "parameter slope has values that read the same"),
    (lambda slope: None, dict(slope=[1]), TypeError, "draw must return a matplotlib Figure"),
    (draw_line, dict(slope=[1], alt=""), ValueError, "alt must be a non-empty str"),
    (draw_line, dict(slope=[1], alt="{depth}"), ValueError, r"must name only the parameters \(slope\)"),
    (draw_line, dict(slope=[1], budget_bytes=0), ValueError, "budget_bytes must be >= 1"),
    (draw_line, dict(slope=[1], budget_bytes=1e6), TypeError, "budget_bytes must be an int"),
    (draw_line, dict(slope=[1], dpi=0), ValueError, "dpi must be an int from 1 to 600"),
    (draw_line, dict(slope=[1], colors=300), ValueError, "colors must be an int from 2 to 256"),
    (draw_line, dict(slope=[1], colors=1), ValueError, "colors must be an int from 2 to 256"),
    (draw_line, dict(slope=[1], colors=16.0), TypeError, "colors must be an int"),
])
def test_bad_arguments_raise_naming_the_argument(draw, kwargs, error, words):
    kwargs = {"alt": "a line", **kwargs}
    with pytest.raises(error, match=words):
        interactive_figure(draw, **kwargs)


@pytest.mark.slow
def test_moving_the_html_slider_in_a_browser_swaps_image_readout_and_alt(page):
    first = interactive_figure(draw_line, slope=[-2, 0, 2], width=[1.0, 4.0],
                               alt="A line of slope {slope}, width {width}")
    second = interactive_figure(draw_line, slope=[1, 2], alt="Second figure, slope {slope}")
    errors, requests = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.set_content(f"<!doctype html><html lang=en><head><meta charset=utf-8><title>t</title>"
                     f"</head><body>{first.html}{second.html}</body></html>")
    figures = page.locator(".resbook-interactive")
    image = figures.first.locator("img")
    slope, width = figures.first.locator("input").all()
    before = image.get_attribute("src")
    slope.fill("2")  # fill on a range input sets the value and fires "input"
    width.focus()
    page.keyboard.press("ArrowRight")  # the way a keyboard user moves it
    assert image.get_attribute("src") not in (before, None)
    assert image.get_attribute("alt") == "A line of slope 2, width 4.0"
    assert figures.first.locator("output").all_text_contents() == ["2", "4"]
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    assert figures.nth(1).locator("output").all_text_contents() == ["1"]  # the other one stays
    assert errors == []
    assert [url for url in requests if not url.startswith("data:")] == []


def test_numpy_integers_set_the_resolution_and_palette_like_python_ints():
    # draw_line is 3 x 2 inches: at 50 dpi every frame is 150 x 100 pixels.
    figure = interactive_figure(draw_line, slope=[1, 2], alt="slope {slope}", dpi=np.int64(50),
                                colors=np.int32(16))
    python = interactive_figure(draw_line, slope=[1, 2], alt="slope {slope}", dpi=50, colors=16)
    assert figure.frames == python.frames
    assert [Image.open(io.BytesIO(frame)).size for frame in figure.frames] == [(150, 100)] * 2


# --- what the alt text and frame size may hold (issue 16, item 8) ---------------------------------

@pytest.mark.parametrize("alt", ["{slope.real}", "{slope[0]}", "{0}", "{}", "{slope:q}", "{slope!z}", "{slope:{w}}"])
def test_an_alt_text_with_more_than_parameter_names_is_a_value_error_naming_alt(alt):
    with pytest.raises(ValueError, match=r"alt '.*' must name only the parameters \(slope\) in braces"):
        interactive_figure(draw_line, alt=alt, slope=[1, 2])


def test_an_alt_text_may_format_a_parameter():
    figure = interactive_figure(draw_line, alt="slope {slope:.1f}", slope=[1, 2])
    assert figure.alts == ["slope 1.0", "slope 2.0"]


def test_a_frame_too_large_to_draw_is_refused_before_it_is_rendered():
    def draw_huge(slope):
        figure = draw_line(slope)
        figure.set_size_inches(100, 100)  # 60,000 × 60,000 pixels at 600 dpi
        return figure

    open_before = len(plt.get_fignums())
    with pytest.raises(ValueError, match=r"more than 16,000,000 pixels: lower dpi"):
        interactive_figure(draw_huge, alt="huge", dpi=600, slope=[1])
    assert len(plt.get_fignums()) == open_before  # the refused figure was closed, not left open
