"""Plots of a suite, each saved as PNG and, for papers, PDF: per-task learning curves (new and published
runs on the same axes, 95% bootstrap bands over runs), aggregate interval estimates, performance profiles,
probability of improvement and sample-efficiency curves (rliable's plot_utils where it has one)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402
from rliable import plot_utils  # noqa: E402

from results import normalize, stats  # noqa: E402
from results.names import slug  # noqa: E402

BINS = 40
BAND_REPS = 1_000
ROW_HEIGHT = 0.37  # inches per method in the aggregate interval plot (rliable's)


def save(fig: plt.Figure, folder: Path, name: str, tight: bool = True, pdf: bool = True) -> list[Path]:
    """<name>.png and, with `pdf`, <name>.pdf, `name` made a slug (results.names.slug); `tight` crops to the
    drawn content (it draws the figure once more)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{slug(name)}.{suffix}" for suffix in (("png", "pdf") if pdf else ("png",))]
    for path in paths:
        fig.savefig(path, bbox_inches="tight" if tight else None, dpi=110)
    plt.close(fig)
    return paths


def binned_curves(episodes: pd.DataFrame, labels: pd.Series, budget: float, bins: int = BINS) -> pd.DataFrame:
    """Mean episode score per run in `bins` equal bins of [0, budget] frames, carried forward over empty
    bins up to the run's last episode. Each label uses its train episodes, or its periodic evaluations if it logged no training
    episodes. Columns: label, task, seed, bin, step (bin end), score."""
    curves = episodes[(episodes["mode"] != "final") & (episodes["step"] <= budget)].copy()
    curves["label"] = labels.reindex(curves.index)
    has_train = curves.groupby("label")["mode"].transform(lambda m: (m == "train").any())
    curves = curves[(curves["mode"] == "train") | ~has_train]
    curves["bin"] = np.minimum((curves["step"] / budget * bins).astype(int), bins - 1)
    means = curves.groupby(["label", "task", "seed", "bin"])["score"].mean().unstack("bin")
    last_bin = curves.groupby(["label", "task", "seed"])["bin"].max().reindex(means.index)
    means = means.reindex(columns=range(bins)).ffill(axis=1)
    means = means.where(np.arange(bins)[None, :] <= last_bin.to_numpy()[:, None])  # not past a run's end
    long = means.stack(future_stack=True).rename("score").reset_index()
    long["step"] = (long["bin"] + 1) * budget / bins
    return long


def _band(values: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs (rows) per bin with a 95% bootstrap band; NaN bins are skipped."""
    rng = np.random.RandomState(seed)
    index = rng.randint(0, values.shape[0], size=(BAND_REPS, values.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bins before a run's first episode are all NaN
        means = np.nanmean(values[index], axis=1)
        lower, upper = np.nanpercentile(means, [2.5, 97.5], axis=0)
        return np.nanmean(values, axis=0), lower, upper


def learning_curves(curves: pd.DataFrame, finals: pd.DataFrame, per_task: pd.DataFrame, tasks: list[str],
                    colors: dict[str, tuple], folder: Path, name: str, xlabel: str, seed: int = 0,
                    pdf: bool = True) -> list[Path]:
    """One panel per task: each label's mean curve with its band; labels with final scores only appear
    as points with their CIs (from the per-task table), side by side at the end of the budget.
    Flagged runs are dashed."""
    columns = min(5, len(tasks))
    rows = int(np.ceil(len(tasks) / columns))
    final_labels = [l for l in colors if l in set(per_task["method"]) - set(curves["label"])]
    per_row = max(3, min(7, 2 * columns))
    legend_rows = int(np.ceil((curves["label"].nunique() + len(final_labels)) / per_row))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.5 * rows + 1.0 + 0.25 * legend_rows),
                             squeeze=False)
    excluded = finals[finals["excluded"]]
    flagged = set(zip(excluded["label"], excluded["task"]))
    end = curves["step"].max() if len(curves) else 1.0
    offsets = dict(zip(final_labels, end * (1 + 0.05 * (np.arange(len(final_labels)) / max(len(final_labels), 1)))))
    for ax, task in zip(axes.flat, tasks):
        for label, group in curves[curves["task"] == task].groupby("label"):
            table = group.pivot(index="seed", columns="step", values="score")
            mean, lower, upper = _band(table.to_numpy(), seed)
            style = "--" if (label, task) in flagged else "-"
            scored = np.isfinite(mean)
            if scored.sum() == 1:  # one bin with episodes (all ended at once): a point, its band the error bar
                ax.errorbar(table.columns[scored], mean[scored], yerr=[mean[scored] - lower[scored],
                            upper[scored] - mean[scored]], fmt="o", ms=3, color=colors[label], label=label,
                            capsize=1.5, lw=1)
                continue
            ax.plot(table.columns, mean, style, color=colors[label], label=label, lw=1.5)
            ax.fill_between(table.columns, lower, upper, color=colors[label], alpha=0.2, lw=0)
        for row in per_task[(per_task["task"] == task) & per_task["method"].isin(final_labels)].itertuples():
            ax.errorbar([offsets[row.method]], [row.mean], yerr=[[row.mean - row.lower], [row.upper - row.mean]],
                        fmt="o", ms=3, color=colors[row.method], label=row.method, capsize=1.5, lw=1)
        ax.set_title(task, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    handles = {}
    for ax in axes.flat:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(text, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=per_row, fontsize=9, frameon=False)
    height = fig.get_figheight()
    fig.supxlabel(xlabel, fontsize=9, y=(0.3 + 0.25 * legend_rows) / height)
    fig.subplots_adjust(left=0.05, right=0.98, top=1 - 0.35 / height, bottom=(0.8 + 0.25 * legend_rows) / height,
                        hspace=0.45, wspace=0.3)
    # Cropping draws the figure twice: worth it only for small grids, where the legend may be wider.
    return save(fig, folder, name, tight=len(tasks) <= 10, pdf=pdf)


def aggregate_intervals(aggregates: pd.DataFrame, colors: dict[str, tuple], folder: Path, name: str,
                        xlabel: str, pdf: bool = True) -> list[Path]:
    names = {"median": "Median", "iqm": "IQM", "mean": "Mean", "optimality_gap": "Optimality Gap"}
    metrics = [m for m in stats.METRICS if aggregates[m].notna().all()]
    points = {r["method"]: np.array([r[m] for m in metrics]) for _, r in aggregates.iterrows()}
    intervals = {r["method"]: np.array([[r[f"{m}_lower"] for m in metrics], [r[f"{m}_upper"] for m in metrics]])
                 for _, r in aggregates.iterrows()}
    fig, _ = plot_utils.plot_interval_estimates(
        points, intervals, metric_names=[names[m] for m in metrics], algorithms=list(points), colors=colors,
        row_height=ROW_HEIGHT, xlabel=xlabel)
    # rliable puts its x-label at a fixed fraction of the figure's height, which grows with the methods: over
    # the tick labels when they are few. Constrained layout puts a figure label below them, given the room.
    (rliable_label,) = fig.texts
    rliable_label.remove()
    fig.supxlabel(xlabel, fontsize="xx-large")
    fig.set_figheight(ROW_HEIGHT * len(points) + 1.3)  # + title, tick labels and x-label
    fig.set_layout_engine("constrained", wspace=0.08)
    return save(fig, folder, name, pdf=pdf)


def performance_profiles(matrices: dict[str, np.ndarray], colors: dict[str, tuple], folder: Path, name: str,
                         xlabel: str, reps: int, seed: int, pdf: bool = True) -> list[Path]:
    top = max(float(np.nanpercentile(np.concatenate([m.ravel() for m in matrices.values()]), 95)), 1e-6)
    taus = np.linspace(min(0.0, min(float(m.min()) for m in matrices.values())), top, 81)
    profiles, intervals = {}, {}
    for label, scores in matrices.items():
        profiles[label], intervals[label] = stats.performance_profile(scores, taus, reps, seed)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=intervals, colors=colors,
                                         xlabel=xlabel, ylabel=r"Fraction of runs with score $> \tau$",
                                         ax=ax, labelsize="large", ticklabelsize="medium")
    handles = [Line2D([], [], color=colors[label], lw=2) for label in profiles]
    ax.legend(handles, list(profiles), fontsize=8, loc="upper right")
    return save(fig, folder, name, pdf=pdf)


def improvement(pairs: dict[str, tuple[float, float, float]], colors: dict[str, tuple], folder: Path,
                name: str, pdf: bool = True) -> list[Path]:
    """P(X > Y) with CIs; `pairs` maps 'X,Y' to (point, lower, upper)."""
    points = {k: v[0] for k, v in pairs.items()}
    intervals = {k: np.array([[v[1]], [v[2]]]) for k, v in pairs.items()}
    pair_colors = [colors[k.split(",")[0]] for k in pairs]  # rliable indexes colours by position
    fig = plt.figure(figsize=(5, 0.45 * len(pairs) + 1.5))
    ax = fig.add_subplot()
    plot_utils.plot_probability_of_improvement(points, intervals, ax=ax, colors=pair_colors)
    return save(fig, folder, name, pdf=pdf)


def sample_efficiency(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], colors: dict[str, tuple],
                      folder: Path, name: str, xlabel: str, ylabel: str, pdf: bool = True) -> list[Path]:
    """curves: label -> (steps, IQM per step, (2, steps) CIs)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (steps, points, intervals) in curves.items():
        ax.plot(steps, points, color=colors[label], label=label, lw=2)
        ax.fill_between(steps, intervals[0], intervals[1], color=colors[label], alpha=0.2, lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, folder, name, pdf=pdf)


def palette(labels: list[str]) -> dict[str, tuple]:
    """A colour per label, in report order (new runs first); distinct up to 20 labels."""
    colors = sns.color_palette("colorblind" if len(labels) <= 10 else "tab20", n_colors=max(len(labels), 1))
    return {label: colors[i] for i, label in enumerate(labels)}


def score_label(normaliser: str) -> str:
    return normalize.LABELS[normalize.canonical(normaliser)]
