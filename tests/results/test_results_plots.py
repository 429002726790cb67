"""Learning curves where every run's episodes fall in one bin (all its envs end their episodes together,
as in the short DMC vision study): each label is drawn as a point with its band, not an invisible line."""

import numpy as np
import pandas as pd
import pytest

from results import plots


def test_a_curve_with_one_scored_bin_is_a_point_with_its_band(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, folder, name, tight: figures.append(fig) or [])
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
