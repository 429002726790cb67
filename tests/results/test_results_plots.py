"""Plots: learning curves where every run's episodes fall in one bin (all its envs end their episodes together,
as in the short DMC vision study) draw each label as a point with its band, not an invisible line; the
aggregate intervals' x-label sits below the tick labels, whatever the number of methods."""

import numpy as np
import pandas as pd
import pytest

from results import plots


def test_a_curve_with_one_scored_bin_is_a_point_with_its_band(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, *args, **kwargs: figures.append(fig) or [])
    episodes = pd.DataFrame({"task": "cartpole_balance", "seed": [0, 1, 2, 0, 1, 2], "mode": "train",
                             "step": 8000, "score": [300.0, 310.0, 320.0, 280.0, 290.0, 300.0]})
    labels = pd.Series(["ours"] * 3 + ["official"] * 3, index=episodes.index)
    curves = plots.binned_curves(episodes, labels, budget=10000)
    finals = pd.DataFrame({"label": ["ours", "official"], "task": "cartpole_balance", "excluded": False})
    per_task = pd.DataFrame(columns=["method", "task", "mean", "lower", "upper"])
    plots.learning_curves(curves, finals, per_task, ["cartpole_balance"], plots.palette(["ours", "official"]),
                          tmp_path, "curves", "env steps")
    ax = figures[0].axes[0]
    points = {c.get_label(): c.lines[0].get_xydata() for c in ax.containers}
    assert set(points) == {"ours", "official"}
    assert points["ours"][0, 1] == pytest.approx(310.0) and points["official"][0, 1] == pytest.approx(290.0)
    assert points["ours"][0, 0] == points["official"][0, 0] and 8000 <= points["ours"][0, 0] <= 10000
    bars = {c.get_label(): np.ptp(c.lines[2][0].get_segments()[0][:, 1]) for c in ax.containers}
    assert 0 < bars["ours"] <= 20  # the bootstrap band of the three runs' mean


@pytest.mark.parametrize("methods", [1, 2, 8])
def test_the_aggregate_x_label_is_below_the_tick_labels(monkeypatch, tmp_path, methods):
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, *args, **kwargs: figures.append(fig) or [])
    labels = [f"method {i} (new)" for i in range(methods)]
    rows = [{"method": label, **{f"{metric}{bound}": 100.0 * i + offset for metric in ("median", "iqm", "mean")
                                 for bound, offset in (("", 0), ("_lower", -20), ("_upper", 20))}}
            for i, label in enumerate(labels)]
    aggregates = pd.DataFrame(rows).assign(optimality_gap=np.nan)
    plots.aggregate_intervals(aggregates, plots.palette(labels), tmp_path, "aggregates", "score")
    fig = figures[0]
    fig.canvas.draw()  # lays the figure out
    renderer = fig.canvas.get_renderer()
    (xlabel,) = [text for text in fig.texts if text.get_text() == "score"]
    label_box = xlabel.get_window_extent(renderer)
    ticks = [tick.get_window_extent(renderer) for ax in fig.axes for tick in ax.get_xticklabels() if tick.get_text()]
    assert ticks and not any(label_box.overlaps(tick) for tick in ticks)
    assert label_box.y1 <= min(tick.y0 for tick in ticks)
