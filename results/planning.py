"""Seeds before GPU hours: how many runs a reproduction needs for a conclusive verdict, from published runs.

`python -m results.report --plan-seeds --suite atari26 --method dreamerv3` prints, per task and for the
suite's aggregates, the runs of ours that give `reproduced (within ±δ)` with 80% power if ours and the
published method agree, assuming our runs spread as the published ones do (results/equivalence.py):
- against the published runs as they are (their number is fixed; where their own spread fills the margin
  no number of our runs is enough: 'out of reach');
- per side, where both sides are new runs (ours beside the official code, `results.report --against`).
Without per-run data the printed seed-to-seed spread of a paper table is used where it has one (Crafter's
scoreboard), against the printed mean as a constant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from results import equivalence, final, reference, stats, tables
from results.load import load

PLAN_REPS = 2_000  # bootstrap replicates for the aggregates' spread


def _published_matrix(suite: str, method: str) -> pd.DataFrame:
    """The shipped published final scores of `method` on the suite's tasks: task, seed, score (normalised)."""
    files = reference.published_files(suite)
    if not files:
        raise ValueError(f"suite {suite} has no published runs to plan from")
    scores = final.final_scores(load(files, suite), None, None)
    scores = scores[(scores["method"] == method) & scores["task"].isin(reference.suite_tasks(suite))]
    return scores[scores["score"].notna()]


def _seeds(delta: float, sd: float, runs: int | None) -> tuple[str, str]:
    """(runs of ours against `runs` fixed reference runs, runs per side with both sides new)."""
    against = equivalence.seeds_needed(delta, sd, sd if runs else 0.0, runs)
    per_side = equivalence.seeds_needed(delta, sd, sd, runs, both_grow=True)
    return (str(against) if against else "out of reach"), (str(per_side) if per_side else "out of reach")


def _plan_from_paper_table(suite: str, method: str, margin: equivalence.Margin) -> pd.DataFrame:
    """Crafter's scoreboard prints a mean and a seed-to-seed spread per method, no runs."""
    board = reference.table("crafter_scoreboard.csv") if suite == "crafter" else pd.DataFrame(columns=["method"])
    board = board[board["method"].str.lower() == method.lower()]
    if board.empty or pd.isna(board["score_std"].iloc[0]):
        known = sorted(final.final_scores(load(reference.published_files(suite), suite), None, None)["method"].unique())
        raise ValueError(f"no published runs of '{method}' on {suite} and no printed spread to plan from; "
                         f"methods with published runs: {', '.join(known)}")
    sd = float(board["score_std"].iloc[0])
    against, per_side = _seeds(margin.task, sd, None)
    return pd.DataFrame([{"task": reference.suite_tasks(suite)[0], "published runs": "paper table",
                          "published mean": float(board["score_pct"].iloc[0]), "spread (sd)": sd,
                          "margin": margin.task, "runs of ours": against, "runs per side (both new)": per_side,
                          "smallest reachable margin": 0.0}])


def plan(suite: str, method: str, margin: equivalence.Margin) -> pd.DataFrame:
    """Per task and per aggregate: published runs, their spread and the runs a conclusive verdict needs."""
    method = reference.counterpart(method)
    scores = _published_matrix(suite, method)
    rows = []
    if scores.empty:
        return _plan_from_paper_table(suite, method, margin)
    if scores.groupby("task").size().max() < 2:
        raise ValueError(f"the published runs of '{method}' on {suite} hold one run per task: no spread to plan from")
    for task, group in scores.groupby("task"):
        values = group["score"].to_numpy()
        sd = float(values.std(ddof=1)) if len(values) >= 2 else np.nan
        against, per_side = _seeds(margin.task, sd, len(values)) if not np.isnan(sd) else ("–", "–")
        rows.append({"task": task, "published runs": len(values), "published mean": values.mean(), "spread (sd)": sd,
                     "margin": margin.task, "runs of ours": against, "runs per side (both new)": per_side,
                     "smallest reachable margin": equivalence.smallest_margin(sd, len(values))})
    tasks = sorted(scores["task"].unique())
    matrix = tables.matrix(scores, "score", tasks)
    if len(matrix) >= 2 and len(tasks) > 1:
        for metric in ("iqm", "mean"):
            spread = stats.bootstrap(matrix, [metric], PLAN_REPS, 0)[metric].std() * len(matrix) / np.sqrt(len(matrix) - 1)
            against, per_side = _seeds(margin.aggregate, spread, len(matrix))
            rows.append({"task": f"aggregate: {metric}", "published runs": len(matrix),
                         "published mean": stats.POINT[metric](matrix), "spread (sd)": spread,
                         "margin": margin.aggregate, "runs of ours": against, "runs per side (both new)": per_side,
                         "smallest reachable margin": equivalence.smallest_margin(spread, len(matrix))})
    return pd.DataFrame(rows)


def _range(numbers: pd.Series) -> str:
    low, high = int(numbers.min()), int(numbers.max())
    return str(low) if low == high else f"{low}-{high}"


def summary(frame: pd.DataFrame) -> str:
    """One line: how many tasks a conclusive verdict is within reach for and the runs they need; the aggregates'."""
    tasks = frame[~frame["task"].str.startswith("aggregate")]
    numbers = pd.to_numeric(tasks["runs of ours"], errors="coerce").dropna()
    parts = [f"per task, {len(numbers)} of {len(tasks)} tasks within reach"
             + (f", needing {_range(numbers)} runs of ours (median {int(numbers.median())})" if len(numbers) else "")]
    for _, row in frame[frame["task"].str.startswith("aggregate")].iterrows():
        runs = row["runs of ours"]
        parts.append(f"{row['task'].removeprefix('aggregate: ')}: " + (f"{runs} runs of ours" if runs != "out of reach"
                     else f"out of reach (the published runs allow ±{row['smallest reachable margin']:.3g})"))
    return "; ".join(parts)
