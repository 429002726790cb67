"""`python -m results.paper [name ...]`: the papers' headline tables, regenerated from the shipped data.

    python -m results.paper                       # list the tables
    python -m results.paper dreamerv2_atari       # regenerate one: printed beside regenerated numbers
    python -m results.paper all --out paper/      # every table, Markdown + LaTeX + CSV

Each table (results/reference/papers.yaml) names its paper, game or task set, methods, final-score rule,
normalisers and the numbers the paper printed with their source. It is regenerated with the report's own
pieces: the shipped published files (load.py), the final-score rules (final.py), the normalisers
(normalize.py) and rliable's aggregates with stratified-bootstrap CIs (stats.py). Writes
<out>/<name>.md, <out>/tables/<name>.csv and .tex, and prints the Markdown.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from results import normalize, reference, stats, tables
from results.final import describe, final_scores
from results.load import Data, load

PAPERS = reference.FOLDER / "papers.yaml"
RLIABLE = ("median", "mean", "iqm")


@cache
def specs() -> dict[str, dict[str, Any]]:
    """The tables papers.yaml declares, by name."""
    return yaml.safe_load(PAPERS.read_text())


def spec(name: str) -> dict[str, Any]:
    if name not in specs():
        raise ValueError(f"unknown paper table '{name}'; valid tables: {', '.join(specs())}")
    return specs()[name]


def table_tasks(table: dict[str, Any]) -> list[str]:
    """The game or task set of a table: its own list, or its suite's."""
    return reference.suite_tasks(table["suite"]) if table["tasks"] == "suite" else list(table["tasks"])


@dataclass
class PaperTable:
    name: str
    spec: dict[str, Any]
    rows: pd.DataFrame  # method, metric, regenerated, lower, upper, printed, difference, printed_from, runs, tasks
    seeds: dict[str, str]  # method -> runs per task, in words
    warnings: list[str]


def _data(table: dict[str, Any]) -> Data:
    """The shipped files of the table's suite, its methods and tasks, cut at its budget."""
    data = load(reference.published_files(table["suite"]), table["suite"])
    data = data.select(methods=list(table["methods"]))
    tasks = table_tasks(table)
    data = Data(data.episodes[data.episodes["task"].isin(tasks)], data.runs[data.runs["task"].isin(tasks)],
                data.warnings)
    if "budget_frames" in table:
        data.runs["budget_frames"] = table["budget_frames"]
    return data


def _value(scores: pd.DataFrame, tasks: list[str], metric: str, reps: int, seed: int) -> tuple[float, float, float]:
    """A metric of one method's normalised final scores, with its 95% stratified-bootstrap CI.

    Mean and median are taken over the per-task means of all runs; the IQM and the CIs need a
    (runs, tasks) matrix, which keeps the lowest seeds where tasks have different numbers of runs."""
    if metric == "seed_std":  # one-task suites: the spread over seeds, as Crafter's README reports it
        return float(np.std(scores["score"])), np.nan, np.nan
    task_means = scores.groupby("task")["score"].mean().reindex(tasks).to_numpy()
    matrix = tables.matrix(scores, "score", tasks)
    point = {"mean": np.mean, "median": np.median}.get(metric)
    value = float(point(task_means)) if point else float(stats.POINT[metric](matrix))
    if matrix.shape[0] == 1:  # one number per task: no CI
        return value, np.nan, np.nan
    _, lower, upper = stats.interval_estimates(matrix, [metric], reps, seed)[metric]
    return value, lower, upper


def _per_game_printed(method: str, metric: str, normaliser: str, tasks: list[str]) -> float:
    """Mean or median over games of the per-game means printed in DIAMOND's tables, normalised."""
    printed = reference.table("atari100k_published.csv")
    printed = printed[(printed["method"] == method) & printed["task"].isin(tasks)]
    if metric not in ("mean", "median") or len(printed) != len(tasks):
        return np.nan
    values = normalize.normalise(normaliser, printed["task"], printed["score"])
    return float(np.mean(values) if metric == "mean" else np.median(values))


def regenerate(name: str, reps: int = 2_000, seed: int = 0) -> PaperTable:
    """One paper table from the shipped per-run data, beside the paper's printed numbers."""
    table = spec(name)
    data, tasks = _data(table), table_tasks(table)
    # The loader's warnings concern rows of tasks outside the table's set; they are not used here.
    rows, seeds, warnings = [], {}, []
    for metric_index, entry in enumerate(table["metrics"]):
        finals = final_scores(data, table["rule"], entry["normaliser"])
        for method, printed_name in table["methods"].items():
            scores = finals[(finals["method"] == method) & finals["score"].notna()]
            printed = (table["printed"].get(method) or [None] * len(table["metrics"]))[metric_index]
            row = {"method": printed_name, "metric": entry["name"], "printed": np.nan if printed is None else printed,
                   "printed_from": table["printed_from"] if printed is not None else "no printed number in the shipped sources"}
            have = [t for t in tasks if t in set(scores["task"])]
            if have:
                point, lower, upper = _value(scores, have, entry["metric"], reps, seed)
                runs = scores.groupby("task").size()
                seeds[printed_name] = f"{runs.min()}" if runs.nunique() == 1 else f"{runs.min()}-{runs.max()}"
                row.update(regenerated=point, lower=lower, upper=upper, tasks=len(have))
            else:
                row.update(regenerated=np.nan, lower=np.nan, upper=np.nan, tasks=0)
            if table.get("printed_per_game"):
                row["from printed per-game means"] = _per_game_printed(method, entry["metric"], entry["normaliser"], tasks)
            row["difference"] = row["regenerated"] - row["printed"]
            rows.append(row)
        fallback = finals[finals["fallback"] & finals["method"].isin(table["methods"])]
        if metric_index == 0 and len(fallback):
            warnings.append(f"{len(fallback)} run(s) had no episode under the rule and count their last one before "
                            f"it: {', '.join(sorted(set(fallback['method'] + '/' + fallback['task'])))}")
    missing = [table["methods"][m] for m in table["methods"] if m not in set(data.runs["method"])]
    if missing:
        warnings.append(f"no shipped per-run data of {', '.join(missing)}: printed numbers only")
    return PaperTable(name, table, pd.DataFrame(rows), seeds, warnings)


def shown(result: PaperTable) -> pd.DataFrame:
    """The table as printed: regenerated [CI], printed, difference, source of the printed number."""
    rows = result.rows
    frame = pd.DataFrame({"method": rows["method"], "metric": rows["metric"],
                          "regenerated [95% CI]": tables.with_ci(rows, "regenerated", "lower", "upper"),
                          "tasks": rows["tasks"], "printed": [f"{v:g}" if pd.notna(v) else "–" for v in rows["printed"]],
                          "difference": rows["difference"]})
    if "from printed per-game means" in rows:
        frame["from printed per-game means"] = rows["from printed per-game means"]
    frame["printed in"] = rows["printed_from"]
    return frame


def markdown(result: PaperTable) -> str:
    table = result.spec
    tasks = table_tasks(table)
    normalisers = ", ".join(sorted({e["normaliser"] for e in table["metrics"]}))
    seeds = "; ".join(f"{m} {n}" for m, n in result.seeds.items())
    lines = [f"## {table['title']}\n", f"Paper: {table['paper']}.\n",
             f"- Tasks ({len(tasks)}): {', '.join(tasks)}",
             f"- Final score per run: {describe(table['rule'])}"
             + (f" (curves cut at {table['budget_frames']:,})" if "budget_frames" in table else ""),
             f"- Normalisers: {normalisers}",
             f"- Runs per task: {seeds or 'none shipped'} (mean and median average all runs of a task; the IQM "
             "and the CIs use a (runs, tasks) matrix of the lowest seeds where the counts differ)",
             f"- Printed numbers: {table['printed_from']}\n",
             tables.markdown(shown(result)),
             f"Notes: {table['notes']}\n"]
    if result.warnings:
        lines += ["Warnings:\n"] + [f"- {w}" for w in result.warnings] + [""]
    return "\n".join(lines)


def write(result: PaperTable, out: Path) -> Path:
    """<out>/<name>.md, <out>/tables/<name>.csv (all numbers) and .tex (the shown columns)."""
    out.mkdir(parents=True, exist_ok=True)
    tables.write(result.rows, out / "tables", result.name, shown(result))
    path = out / f"{result.name}.md"
    path.write_text(markdown(result))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m results.paper", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="tables to regenerate ('all' for every one); none: list them")
    parser.add_argument("--out", default="paper", help="output folder (default: paper)")
    parser.add_argument("--reps", type=int, default=2_000, help="bootstrap replicates for the CIs (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    if not args.names:
        for name, table in specs().items():
            print(f"{name:24s} {table['title']}")
        return 0
    names = list(specs()) if args.names == ["all"] else args.names
    for name in names:
        spec(name)  # unknown names fail before any work
    for name in names:
        result = regenerate(name, args.reps, args.seed)
        path = write(result, Path(args.out))
        sys.stdout.write(markdown(result) + f"\nwrote {path}\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
