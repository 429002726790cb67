"""Honesty checks: which runs a report may average, and why the others are marked.

A run is flagged (and left out of aggregates and verdicts unless the report is asked to include
flagged runs) when it is unfinished (state not done, or fewer frames than its budget), when its
protocol differs from the suite's paper protocol (overrides recorded in its config, or a budget or
action repeat that differs from the paper's), when no episode falls under its final-score rule, or (runs of this
project only) when its task has fewer seeds than the method's other tasks. A method that lacks some of the suite's tasks is left out of the
suite aggregates. Runs whose final-score window was empty and that count their last episode instead
are noted but kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from results import reference
from results.load import RUN_KEYS


def label(method: str, source: str) -> str:
    """The name a method has in tables and plots: published runs by their name, others marked."""
    return method if source == "published" else f"{method} ({source})"


def _flags(table: pd.DataFrame, paper: dict) -> list[list[str]]:
    """Each run's reasons to be left out (published runs can only lack a score)."""
    paper_budget, paper_repeat = paper["budget_frames"], paper["action_repeat"]
    ours = (table["source"] != "published").to_numpy()
    step = pd.to_numeric(table["step"], errors="coerce").to_numpy(dtype=float)
    budget = table["budget_frames"].to_numpy(dtype=float)
    flags: list[list[str]] = [[] for _ in range(len(table))]
    for i in np.flatnonzero(ours):
        run = table.iloc[i]
        if run["state"] != "done":
            flags[i].append(f"unfinished (state {run['state']})")
        if step[i] < budget[i]:
            flags[i].append(f"unfinished budget ({int(step[i]):,} of {int(budget[i]):,} frames)")
        if run["overrides"]:
            flags[i].append(f"protocol overridden: {run['overrides']}")
        else:
            if budget[i] != paper_budget:
                flags[i].append(f"budget {int(budget[i]):,} frames, paper {paper_budget:,}")
            if run["action_repeat"] != paper_repeat:
                flags[i].append(f"action repeat {run['action_repeat']}, paper {paper_repeat}")
    for i in np.flatnonzero(table["score"].isna().to_numpy()):
        flags[i].append(table["unscored"].iloc[i] or "no episode under the final-score rule")
    return flags


def judge(finals: pd.DataFrame, runs: pd.DataFrame, suite: str, include_flagged: bool = False) -> pd.DataFrame:
    """The final scores with columns label, flags (text), excluded (bool) and note (text)."""
    table = finals.merge(runs[RUN_KEYS + ["state", "step", "budget_frames", "action_repeat", "overrides"]], on=RUN_KEYS)
    table["label"] = [label(m, s) for m, s in zip(table["method"], table["source"])]
    flags = _flags(table, reference.suite_defaults(suite))
    table["note"] = np.where(table["fallback"], "final-score window empty: its last episode before it counts", "")
    usable = np.array([not f for f in flags])
    counts = table[usable].groupby(["label", "task"]).size()
    most = counts.groupby(level="label").max()
    have = pd.Series(list(zip(table["label"], table["task"]))).map(counts).fillna(0).astype(int).to_numpy()
    # Published files hold what their authors ran (e.g. 3 to 6 seeds per game); only our runs miss seeds.
    ours = (table["source"] != "published").to_numpy()
    short = usable & ours & (have < table["label"].map(most).fillna(0).to_numpy())
    for i in np.flatnonzero(short):
        flags[i].append(f"missing seeds ({have[i]} of {most[table['label'].iloc[i]]} runs)")
    table["flags"] = ["; ".join(f) for f in flags]
    table["excluded"] = table["score"].isna() | ((table["flags"] != "") & (not include_flagged))
    return table


def coverage(table: pd.DataFrame, tasks: list[str]) -> dict[str, list[str]]:
    """For each label, the tasks (of the suite, or of --tasks) it has no usable run of."""
    tasks = set(tasks)
    usable = table[~table["excluded"]]
    return {name: sorted(tasks - set(usable.loc[usable["label"] == name, "task"]))
            for name in table["label"].unique()}
