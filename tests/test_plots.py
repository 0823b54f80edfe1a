"""Facts about the book's plotting helpers."""
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from resbook.plots import KIND_COLORS, PALETTE, plot_band, smooth, use_book_style  # noqa: E402


def test_smooth_is_a_running_mean_shorter_at_the_start():
    np.testing.assert_allclose(smooth([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(smooth([3, 1, 2], 10), [3, 2, 2])


def test_band_draws_the_median_and_spans_runs_that_stopped_early():
    use_book_style()
    fig, ax = plt.subplots()
    line = plot_band(ax, [[1, 2, 3], [3, 4, 5], [2, 3]], label="runs", color=PALETTE["blue"])
    np.testing.assert_allclose(line.get_ydata(), [2, 3, 4])
    plt.close(fig)


def test_plain_and_residual_have_distinct_palette_colours():
    assert KIND_COLORS["plain"] != KIND_COLORS["residual"]
    assert set(KIND_COLORS.values()) <= set(PALETTE.values())


@pytest.mark.parametrize("window", [0, -3])
def test_smooth_rejects_a_window_below_one(window):
    with pytest.raises(ValueError, match="window"):
        smooth([1, 2], window)


def test_band_needs_at_least_one_run():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="curves"):
        plot_band(ax, [], label="none", color="k")
    plt.close(fig)


def test_smooth_takes_a_numpy_integer_window_as_the_same_window():
    values = [4.0, 0.0, 2.0, 6.0]
    np.testing.assert_array_equal(smooth(values, np.int64(2)), smooth(values, 2))


@pytest.mark.parametrize("window", [1.5, 2.0, True, "2"])
def test_smooth_refuses_a_window_that_is_not_an_int(window):
    with pytest.raises(TypeError, match="window must be an int"):
        smooth([1, 2], window)


def test_band_spans_the_lowest_and_highest_run_at_every_step():
    curves = [[1, 2, 3], [3, 4, 5], [2, 3]]  # the third run stopped after two steps
    fig, ax = plt.subplots()
    plot_band(ax, curves, label="runs", color=PALETTE["blue"])
    (band,) = ax.collections
    corners = band.get_paths()[0].vertices
    for step in range(3):
        reached = [curve[step] for curve in curves if len(curve) > step]
        at_step = corners[corners[:, 0] == step, 1]
        assert (at_step.min(), at_step.max()) == (min(reached), max(reached))
    plt.close(fig)


# --- diverging runs (issue 16, item 5) -----------------------------------------------------------
# The reference: each window's mean computed on its own with math.fsum (exactly rounded sums).

def window_means(values, window):
    import math

    return [math.fsum(values[max(0, i - window + 1): i + 1]) / len(values[max(0, i - window + 1): i + 1])
            for i in range(len(values))]


def test_smooth_keeps_small_values_exact_after_a_huge_one_has_left_the_window():
    # A running mean by cumulative sums gives 0.0 here: 1e16 swallows the 0.01s and is subtracted again.
    smoothed = smooth([1e16] + [0.01] * 100, 20)
    assert smoothed[-1] == pytest.approx(0.01, rel=1e-12)
    np.testing.assert_allclose(smoothed, window_means([1e16] + [0.01] * 100, 20), rtol=1e-12)


def test_smooth_of_values_near_the_largest_float_stays_finite():
    smoothed = smooth([1e308, 1e308, 1, 1], 2)  # the old running sum overflowed: [1e308, inf, nan, nan]
    np.testing.assert_allclose(smoothed, [1e308, 1e308, 5e307, 1.0], rtol=1e-12)
    assert np.isfinite(smooth([np.finfo(float).max] * 5, 3)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_blanks_only_the_windows_that_hold_it(bad):
    values = [1.0, 2.0, bad, 4.0, 5.0, 6.0]
    smoothed = smooth(values, 2)
    assert np.isnan(smoothed[2:4]).all()  # the windows [2, bad] and [bad, 4]
    np.testing.assert_allclose(smoothed[[0, 1, 4, 5]], [1.0, 1.5, 4.5, 5.5])


def test_smooth_equals_the_exact_mean_of_each_window_for_any_finite_values():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    # Float sums of one window may cancel (1e300 + 1 - 1e300), so the error bound is the window's own
    # rounding, a few ulps of its largest value per term (or of the smallest subnormal, for values near
    # it); values outside the window must add nothing.
    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.floats(-1e300, 1e300), max_size=60), st.integers(1, 80))
    def check(values, window):
        largest = [max(map(abs, values[max(0, i - window + 1): i + 1])) for i in range(len(values))]
        error = np.abs(smooth(values, window) - window_means(values, window))
        rounding = 4 * window * np.finfo(float).eps * np.array(largest, dtype=float)
        subnormal = 4 * window * np.finfo(float).smallest_subnormal  # each term is divided before it is added
        assert (error <= rounding + subnormal).all()

    check()


def test_a_band_of_diverged_runs_draws_the_finite_values_without_warnings():
    import warnings

    use_book_style()
    fig, ax = plt.subplots()
    runs = [[2.0, 3e38, np.inf], [2.0, 1.0], [np.nan, 4.0, 1.0, 0.5]]  # stopped early, overflowed, NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line = plot_band(ax, runs, label="diverging", color=PALETTE["blue"])
        ax.set_yscale("log")
        fig.canvas.draw()
    np.testing.assert_allclose(line.get_ydata(), [2.0, 4.0, 1.0, 0.5])  # medians of the finite values
    plt.close(fig)


@pytest.mark.parametrize("values", ["123", [1, "2"], [[1, 2], [3, 4]], [1j], None, 3.0])
def test_smooth_refuses_what_is_not_a_sequence_of_numbers_naming_values(values):
    with pytest.raises(TypeError, match="values must be a 1-D sequence"):
        smooth(values, 2)


def test_the_band_is_the_lines_colour_at_a_fifth_of_its_opacity_and_the_line_carries_the_label():
    use_book_style()
    fig, ax = plt.subplots()
    line = plot_band(ax, [[1, 2], [3, 4]], label="plain", color=PALETTE["vermillion"])
    (band,) = ax.collections
    expected = matplotlib.colors.to_rgba(PALETTE["vermillion"], alpha=0.2)
    np.testing.assert_allclose(band.get_facecolor()[0], expected)
    assert matplotlib.colors.to_hex(line.get_color()) == PALETTE["vermillion"].lower()
    assert line.get_label() == "plain"
    plt.close(fig)


@pytest.mark.parametrize("arguments, error, message", [
    (dict(ax="axes"), TypeError, r"^ax must be a matplotlib Axes \(e.g. from plt.subplots\(\)\), got str$"),
    (dict(curves=5), ValueError,
     r"^curves must hold at least one run \(a sequence of sequences of numbers\), got int 5$"),
    (dict(curves=[[1, 2], "ab"]), TypeError, "^curves\\[1\\] must be a 1-D sequence of numbers, got str 'ab'$"),
    (dict(x="ab"), TypeError, "^x must be a 1-D sequence of numbers, got str 'ab'$"),
    (dict(x=[[0], [1, 2]]), TypeError, "^x must be a 1-D sequence of numbers: "),
    (dict(x=[[0], [1]]), TypeError, "^x must be a 1-D sequence of real numbers, got 2-D values of dtype int64$"),
])
def test_a_band_of_bad_arguments_is_refused_naming_the_argument(arguments, error, message):
    fig, ax = plt.subplots()
    call = dict(ax=ax, curves=[[1, 2], [3, 4]], label="runs", color="k") | arguments
    with pytest.raises(error, match=message):
        plot_band(call.pop("ax"), call.pop("curves"), **call)
    plt.close(fig)


def test_a_refusal_shows_at_most_200_characters_of_what_came():
    fig, ax = plt.subplots()
    with pytest.raises(TypeError) as refusal:
        plot_band(ax, [[1, 2]], label="runs", color="k", x="a" * 500)
    assert str(refusal.value).startswith("x must be a 1-D sequence of numbers, got str 'aaa")
    assert len(str(refusal.value)) == 200
    plt.close(fig)


@pytest.mark.parametrize("sign", [1, -1])
def test_the_running_mean_of_the_largest_floats_is_the_largest_float_without_a_warning(sign):
    # Three values of ±max: each window's sum overflows in a naive mean; smooth clips the mean to ±max quietly.
    largest = sign * np.finfo(float).max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(smooth([largest] * 3, 3), [largest] * 3)


def test_the_line_takes_the_style_it_is_given():
    fig, ax = plt.subplots()
    line = plot_band(ax, [[1, 2], [3, 4]], label="plain", color="k", linestyle="--")
    assert line.get_linestyle() == "--"
    plt.close(fig)
