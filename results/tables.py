"""Tables of a suite: per task, aggregates, reproduction verdicts and compute, and their writers.

Inputs are the judged final scores of checks.judge (one row per run with label, score, raw, excluded).
Verdicts are equivalence tests against the suite's margin (results/equivalence.py): per task on the
normalised score with the 90% Welch interval of the difference, per suite on the IQM and mean with the
expanded percentile bootstrap. Where the published side is a single number from a paper table (no per-run
data), the published value is taken as exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from results import equivalence, normalize, reference, stats
from results.names import slug


def matrix(table: pd.DataFrame, column: str = "score", tasks: list[str] | None = None) -> np.ndarray:
    """(runs, tasks) matrix of one label's runs; tasks with more runs are cut to the fewest (lowest seeds)."""
    tasks = tasks or sorted(table["task"].unique())
    table = table.sort_values("seed")
    columns = [table.loc[table["task"] == t, column].to_numpy() for t in tasks]
    runs = min(len(c) for c in columns)
    return np.stack([c[:runs] for c in columns], axis=1)


def per_task(table: pd.DataFrame, reps: int, seed: int) -> pd.DataFrame:
    """Mean raw score per task and label with its bootstrap CI. Flagged runs count only where a label
    has no usable run of the task; such rows say so in `flagged`."""
    scored = table[table["score"].notna()]
    usable = scored[~scored["excluded"]]
    has_usable = pd.MultiIndex.from_frame(scored[["label", "task"]]).isin(
        pd.MultiIndex.from_frame(usable[["label", "task"]]))
    shown = pd.concat([usable, scored[scored["excluded"].to_numpy() & ~has_usable]])
    rows = []
    for name, runs in shown.groupby("label"):
        tasks = sorted(runs["task"].unique())
        sizes = runs.groupby("task").size()
        groups = [tasks] if sizes.nunique() == 1 else [[t] for t in tasks]  # one bootstrap when runs are equal
        for group in groups:
            part = runs[runs["task"].isin(group)]
            mean, lower, upper = stats.task_mean_intervals(matrix(part, "raw", group), reps, seed)
            for i, task in enumerate(group):
                these = part[part["task"] == task]
                rows.append({"task": task, "method": name, "runs": len(these), "mean": mean[i], "lower": lower[i],
                             "upper": upper[i], "normalised": these["score"].mean(),
                             "flagged": "flagged runs only" if these["excluded"].all() else ""})
    columns = ["task", "method", "runs", "mean", "lower", "upper", "normalised", "flagged"]
    return pd.DataFrame(rows, columns=columns).sort_values(["task", "method"], ignore_index=True)


# Normalisers whose scores have a natural target of 1, the threshold of the optimality gap.
GAP_NORMALISERS = {"atari_human", "atari_record", "atari_record_clipped", "dmlab_capped", "procgen_minmax", "diamond",
                   "classic_minmax"}


def aggregates(table: pd.DataFrame, labels: list[str], tasks: list[str], reps: int, seed: int) -> pd.DataFrame:
    """rliable aggregates with CIs of each label over `tasks` (normalised scores); labels whose matrices
    have one shape share their bootstrap draws. The optimality gap (to 1) is left empty for scores
    without a natural 1 (raw returns, Crafter percentages)."""
    runs = {l: table[(table["label"] == l) & ~table["excluded"] & table["task"].isin(tasks)] for l in labels}
    scores = {l: matrix(runs[l], "score", tasks) for l in labels}
    by_shape: dict[tuple[int, int], list[str]] = {}
    for label in labels:
        by_shape.setdefault(scores[label].shape, []).append(label)
    distributions = {}
    for group in by_shape.values():
        for label, result in zip(group, stats.bootstrap_many([scores[l] for l in group], stats.METRICS, reps, seed)):
            distributions[label] = result
    rows = []
    for label in labels:
        row = {"method": label, "runs": scores[label].shape[0], "tasks": scores[label].shape[1],
               "rule": runs[label]["rule"].iloc[0], "normaliser": runs[label]["normaliser"].iloc[0]}
        for metric, (point, lower, upper) in stats.estimates(scores[label], distributions[label]).items():
            if metric == "optimality_gap" and row["normaliser"] not in GAP_NORMALISERS:
                point = lower = upper = np.nan
            row.update({metric: point, f"{metric}_lower": lower, f"{metric}_upper": upper})
        rows.append(row)
    return pd.DataFrame(rows)


def _paper_means(suite: str, method: str) -> pd.Series:
    """Per-task published means from the shipped paper tables (raw scores), when there are any."""
    if suite == "atari26":
        rows = reference.table("atari100k_published.csv")
        return rows[rows["method"] == method].set_index("task")["score"]
    if suite == "crafter":
        board = reference.table("crafter_scoreboard.csv")
        board = board[board["method"].str.lower() == method.lower()]
        return pd.Series(board["score_pct"].to_numpy(), index=["crafter_reward"] * len(board))
    return pd.Series(dtype=float)


def _spread(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) >= 2 else np.nan


def _seeds_needed(delta: float, sd_new: float, sd_ref: float, reference_runs: int | None,
                  reference_grows: bool) -> str:
    """What an inconclusive verdict says of the runs it would take ('' where no spread is known)."""
    if np.isnan(sd_new) or np.isnan(sd_ref):
        return ""
    seeds = equivalence.seeds_needed(delta, sd_new, sd_ref, reference_runs, reference_grows)
    smallest = equivalence.smallest_margin(sd_ref, reference_runs) if reference_runs else np.nan
    return equivalence.seeds_text(seeds, reference_grows, smallest)


def reproduction(table: pd.DataFrame, new: str, published: str, suite: str, delta: float,
                 reference_grows: bool = False) -> pd.DataFrame:
    """Per task: published vs new mean (raw) with 95% t CIs and their ratio; the difference in the suite's
    normalised score with its 90% Welch interval, judged against the margin `delta` (results.equivalence),
    and, where that is not conclusive, the runs it would take. reference_grows: the reference is runs of
    ours too (--against), so the seeds needed are per side."""
    usable = table[~table["excluded"]]
    new_runs = usable[usable["label"] == new]
    old_runs = usable[usable["label"] == published]
    paper = _paper_means(suite, published)  # for tasks without per-run published data
    normaliser = table["normaliser"].iloc[0]
    rows = []
    for task in sorted(set(table.loc[table["label"] == new, "task"])):
        x = new_runs.loc[new_runs["task"] == task, ["raw", "score"]].to_numpy().T
        y = old_runs.loc[old_runs["task"] == task, ["raw", "score"]].to_numpy().T
        row = {"task": task, "published": published, "new": new, "published_runs": y.shape[1],
               "new_runs": x.shape[1], "margin": delta}
        if y.shape[1] == 0 and task in paper.index:
            raw = float(paper[task])  # a constant: the paper's runs are unknown
            reference_score = float(normalize.normalise(normaliser, [task], [raw])[0])
            old = (raw, np.nan, np.nan)
            row["published_from"] = "paper table"
        else:
            reference_score, old = y[1], stats.welch_interval(y[0], 0.0) if y.shape[1] else None
            row["published_from"] = "per-run data"
        if x.shape[1] == 0 or old is None:
            row["outcome"] = "n/a"
            row["verdict"] = "n/a (no usable new runs)" if x.shape[1] == 0 else "n/a (no published runs)"
            rows.append(row)
            continue
        fresh = stats.welch_interval(x[0], 0.0)
        diff = stats.welch_interval(x[1], reference_score, equivalence.LEVEL)
        kind = equivalence.judge(diff[1], diff[2], delta)
        seeds = ""
        if kind in ("inconclusive", "n/a"):
            constant = np.isscalar(reference_score)
            sd_ref = 0.0 if constant else _spread(reference_score)
            sd_new = _spread(x[1])
            sd_new = sd_ref if np.isnan(sd_new) and not constant else sd_new  # one run: the published spread
            seeds = _seeds_needed(delta, sd_new, sd_ref, None if constant else len(reference_score), reference_grows)
        row.update(published_mean=old[0], published_lower=old[1], published_upper=old[2],
                   new_mean=fresh[0], new_lower=fresh[1], new_upper=fresh[2],
                   ratio=fresh[0] / old[0] if old[0] > 0 else np.nan,
                   diff=diff[0], diff_lower=diff[1], diff_upper=diff[2], seeds_needed=seeds, outcome=kind,
                   verdict=equivalence.verdict_text(kind, delta, seeds))
        rows.append(row)
    return pd.DataFrame(rows)


def reproduction_aggregate(table: pd.DataFrame, new: str, published: str, reps: int, seed: int, delta: float,
                           reference_grows: bool = False) -> pd.DataFrame:
    """Per suite: IQM and mean of normalised scores, new vs published on the tasks both have usable runs of;
    the difference's interval is the expanded percentile bootstrap at 90% (equivalence.expanded_level),
    judged against the margin `delta`. None for a single task: its per-task verdict is the one."""
    usable = table[~table["excluded"]]
    tasks = sorted(set(usable.loc[usable["label"] == new, "task"]) & set(usable.loc[usable["label"] == published, "task"]))
    if len(tasks) < 2:
        return pd.DataFrame()
    x = matrix(usable[usable["label"] == new], "score", tasks)
    y = matrix(usable[usable["label"] == published], "score", tasks)
    level = equivalence.expanded_level(min(len(x), len(y)))
    rows = []
    for metric in ("iqm", "mean"):
        new_est = stats.interval_estimates(x, [metric], reps, seed)[metric]
        old_est = stats.interval_estimates(y, [metric], reps, seed)[metric]
        a, b = stats.difference_bootstrap(x, y, metric, reps, seed)
        lower, upper = stats.percentile_interval(a - b, level)
        kind = equivalence.judge(lower, upper, delta) if min(len(x), len(y)) >= 2 else "n/a"
        seeds = ""
        if kind in ("inconclusive", "n/a"):
            # the spread of one run's aggregate, from the bootstrap sd of each side's metric (n runs: sd / sqrt(n)
            # times sqrt((n - 1) / n)); a side with one run borrows the other side's
            sd_new, sd_ref = (s.std() * n / np.sqrt(n - 1) if n >= 2 else np.nan for n, s in ((len(x), a), (len(y), b)))
            sd_new = sd_ref if np.isnan(sd_new) else sd_new
            seeds = _seeds_needed(delta, sd_new, sd_ref, len(y), reference_grows)
        rows.append({"metric": metric, "tasks": len(tasks), "published": published, "new": new,
                     "published_value": old_est[0], "published_lower": old_est[1], "published_upper": old_est[2],
                     "new_value": new_est[0], "new_lower": new_est[1], "new_upper": new_est[2],
                     "ratio": new_est[0] / old_est[0] if old_est[0] > 0 else np.nan, "margin": delta,
                     "diff": new_est[0] - old_est[0], "diff_lower": float(lower), "diff_upper": float(upper),
                     "seeds_needed": seeds, "outcome": kind, "verdict": equivalence.verdict_text(kind, delta, seeds)})
    return pd.DataFrame(rows)


def compute(runs: pd.DataFrame) -> pd.DataFrame:
    """What each new run cost, from its meta.json."""
    columns = ["suite", "task", "method", "seed", "state", "device", "wall_hours", "gpu_hours", "cpu_hours"]
    return runs.loc[runs["source"] == "new", columns].sort_values(["method", "task", "seed"])


# ---------------------------------------------------------------- writers

def cell(value: object) -> str:
    """Numbers as a table shows them: 3 significant digits, whole numbers from 1,000 on."""
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "–"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def with_ci(frame: pd.DataFrame, point: str, lower: str, upper: str) -> list[str]:
    """'point [lower, upper]' cells."""
    return [f"{cell(p)} [{cell(lo)}, {cell(hi)}]" if not pd.isna(p) else "–"
            for p, lo, hi in zip(frame.get(point, []), frame.get(lower, []), frame.get(upper, []))]


def markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)\n"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def latex(frame: pd.DataFrame) -> str:
    def escape(text: str) -> str:
        return "".join("\\" + c if c in "&%$#_{}" else c for c in text)
    lines = ["\\begin{tabular}{" + "l" * len(frame.columns) + "}", "\\toprule",
             " & ".join(escape(str(c)) for c in frame.columns) + " \\\\", "\\midrule"]
    lines += [" & ".join(escape(cell(v)) for v in row) + " \\\\" for row in frame.itertuples(index=False)]
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}"]) + "\n"


def path(folder: Path, name: str, suffix: str = ".csv") -> Path:
    """Where `write` puts table `name` (which may hold a method's label): its slug, results.names.slug."""
    return folder / f"{slug(name)}{suffix}"


def write(frame: pd.DataFrame, folder: Path, name: str, shown: pd.DataFrame | None = None, tex: bool = True) -> None:
    """<name>.csv (all numbers) and, with `tex`, <name>.tex (the shown columns) in `folder`, named by `path`."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path(folder, name), index=False)
    if tex:
        path(folder, name, ".tex").write_text(latex(frame if shown is None else shown))
