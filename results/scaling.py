"""Scaling plots of a sweep: final score against a swept numeric setting, like DreamerV3's model-size
and replay-ratio figures.

A run directory of a grid records its variant in config.yaml (`variant: {name, label, settings}`,
harness/sweep.py). For each numeric setting that takes two or more values among one agent's
variants (model sizes such as `12m` count as numbers), `scaling_plots` draws `<suite>_scaling_<key>`: the aggregate (IQM over tasks, 95%
stratified bootstrap CI) in the first panel, then the mean final score of each task with its CI;
one line per combination of the other settings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from results import plots, stats, tables

AGGREGATE = "aggregate (IQM)"


def variant_settings(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per method of this project's runs that is a variant: method, agent, settings (dict)."""
    rows = {}
    for run in runs[runs["source"] == "new"].itertuples():
        if run.method in rows:
            continue
        config_path = Path(run.origin) / "config.yaml"
        config = yaml.safe_load(config_path.read_text()) if config_path.exists() else {}
        settings = (config.get("variant") or {}).get("settings")
        if settings:
            rows[run.method] = {"method": run.method, "agent": config["agent"]["name"], "settings": settings}
    return pd.DataFrame(list(rows.values()), columns=["method", "agent", "settings"])


SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}  # model sizes such as DreamerV3's '12m'


def number(value: Any) -> float | None:
    """A setting's value on a numeric axis (`12m` -> 12e6), or None for text and booleans."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kmbg])", str(value).lower())
    return float(match[1]) * SUFFIXES[match[2]] if match else None


def swept_keys(variants: pd.DataFrame) -> list[str]:
    """Numeric settings with two or more values among one agent's variants."""
    found = set()
    for _, group in variants.groupby("agent"):
        for key in {k for s in group["settings"] for k in s}:
            values = [s[key] for s in group["settings"] if key in s]
            if all(number(v) is not None for v in values) and len(set(values)) >= 2:
                found.add(key)
    return sorted(found)


def _lines(variants: pd.DataFrame, key: str) -> dict[str, list[tuple[float, str]]]:
    """Line name (agent and the other settings) -> [(x, method)] sorted by x."""
    lines: dict[str, list[tuple[float, str]]] = {}
    for row in variants.itertuples():
        if number(row.settings.get(key)) is None:
            continue
        others = ", ".join(f"{k.removeprefix('agent.')}={v}" for k, v in sorted(row.settings.items()) if k != key)
        lines.setdefault(row.agent + (f" [{others}]" if others else ""), []).append((number(row.settings[key]), row.method))
    return {name: sorted(points) for name, points in lines.items()}


def scaling_plots(table: pd.DataFrame, runs: pd.DataFrame, suite: str, folder: Path, reps: int, seed: int,
                  score_label: str, pdf: bool = True) -> list[Path]:
    """One figure per swept numeric key, with the plotted numbers in a CSV beside its PNG; `table` is the
    judged final-score table (checks.judge)."""
    variants = variant_settings(runs)
    if variants.empty:
        return []
    usable = table[~table["excluded"] & (table["source"] == "new")]
    figures = []
    for key in swept_keys(variants):
        lines = _lines(variants, key)
        methods = [m for points in lines.values() for _, m in points]
        tasks = sorted(usable.loc[usable["method"].isin(methods), "task"].unique())
        if not tasks:
            continue
        fig, axes = plots.plt.subplots(1, len(tasks) + 1, figsize=(3.6 * (len(tasks) + 1), 3.4), squeeze=False)
        colors = plots.palette(list(lines))
        points = _points(usable, lines, tasks, reps, seed)
        for (name, panel), series in points.groupby(["line", "panel"], sort=False):
            ax = axes[0][0 if panel == AGGREGATE else tasks.index(panel) + 1]
            point, lower, upper = (series[c].to_numpy() for c in ("point", "lower", "upper"))
            ax.errorbar(series["x"], point, yerr=[point - lower, upper - point], color=colors[name], marker="o",
                        capsize=3, lw=2, label=name)
        shown = {number(s[key]): str(s[key]) for s in variants["settings"] if key in s}  # '12m' stays '12m'
        values = sorted({x for points in lines.values() for x, _ in points})
        for ax, title in zip(axes[0], [AGGREGATE] + tasks):
            if values[0] > 0 and values[-1] / values[0] >= 8:  # sizes and ratios span orders of magnitude
                ax.set_xscale("log")
            ax.set_xticks(values, [shown[v] for v in values])
            ax.minorticks_off()  # a log axis would label its minor ticks over the values
            ax.set_title(title, fontsize=10)
            ax.set_xlabel(key.removeprefix("agent."))
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(f"final {score_label} (95% CI)")
        axes[0][0].legend(fontsize=7)
        saved = plots.save(fig, folder, f"{suite}_scaling_{key.removeprefix('agent.')}", pdf=pdf)
        points.rename(columns={"x": key}).to_csv(saved[0].with_suffix(".csv"), index=False)
        figures += saved
    return figures


def _points(usable: pd.DataFrame, lines: dict[str, list[tuple[float, str]]], tasks: list[str], reps: int,
            seed: int) -> pd.DataFrame:
    """Per line, panel (the aggregate or a task) and x: point, lower, upper (95% bootstrap CI) and runs."""
    rows = []
    for name, line in lines.items():
        for x, method in line:
            own = usable[usable["method"] == method]
            if set(own["task"]) == set(tasks):  # the aggregate needs every task
                scores = tables.matrix(own, "score", tasks)
                iqm = stats.interval_estimates(scores, ["iqm"], reps, seed)["iqm"]
                rows.append((name, method, AGGREGATE, x, *iqm, len(scores)))
            for task in tasks:
                values = own.loc[own["task"] == task, "score"].to_numpy(dtype=float)
                if len(values):
                    rows.append((name, method, task, x, *stats.mean_interval(values, reps, seed), len(values)))
    return pd.DataFrame(rows, columns=["line", "method", "panel", "x", "point", "lower", "upper", "runs"])
