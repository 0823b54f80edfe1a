"""Facts about the book's plotting helpers."""
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
