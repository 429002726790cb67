"""`python -m results.calibration`: the error rates of the verdicts, measured by simulation on published runs.

Synthetic studies are drawn from the shipped published per-run scores of a method: per task, "ours" and the
reference are resampled (with replacement) from that task's published runs, and ours is shifted by a
chosen true difference, in multiples of the suite's margin δ. Each study is judged as a report judges one
(results.equivalence), and the share of each outcome is counted over tasks and trials:

- true difference 0: `above` or `below` should come at most 5% of the time;
- true difference δ (the edge of the margin): `reproduced` at most 5% (the size of the equivalence test);
- true difference 1.5δ: `reproduced` at most 5%;
- with the runs `--plan-seeds` recommends for a task (true difference 0): `reproduced` about 80% of the time.

    python -m results.calibration --suite atari26 --method dreamerv3 --trials 400
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from results import equivalence, planning, stats, tables

SCENARIOS = {"equal, 3 runs a side": (0.0, 3), "equal, 5 runs a side": (0.0, 5), "at the margin, 5 runs a side": (1.0, 5),
             "1.5 margins apart, 3 runs a side": (1.5, 3), "1.5 margins apart, 5 runs a side": (1.5, 5)}


def _outcome(ours: np.ndarray, reference: np.ndarray, delta: float) -> str:
    _, lower, upper = stats.welch_interval(ours, reference, equivalence.LEVEL)
    return equivalence.judge(lower, upper, delta)


def per_task_rates(suite: str, method: str, trials: int, seed: int = 0) -> pd.DataFrame:
    """Per scenario: the share of each outcome over every task's `trials` synthetic studies, and the planner's
    promise checked on the tasks it finds within reach (at most 30 runs, its recommended number per side)."""
    margin = equivalence.margin(suite)
    scores = planning._published_matrix(suite, method)
    runs = {task: group["score"].to_numpy() for task, group in scores.groupby("task") if len(group) >= 2}
    rng = np.random.default_rng(seed)
    rows = []
    for name, (shift, n) in SCENARIOS.items():
        outcomes = [_outcome(rng.choice(values, n) + shift * margin.task, rng.choice(values, n), margin.task)
                    for values in runs.values() for _ in range(trials)]
        rows.append({"scenario": name, "tasks": len(runs), "studies": len(outcomes),
                     **{kind: np.mean([o == kind for o in outcomes]) for kind in ("reproduced", "above", "below",
                                                                                  "inconclusive")}})
    planned, predicted = [], []
    for values in runs.values():
        sd = values.std(ddof=1)
        n = equivalence.seeds_needed(margin.task, sd, sd, both_grow=True)
        if sd > 0 and n is not None and n <= 30:
            planned += [_outcome(rng.choice(values, n), rng.choice(values, n), margin.task) for _ in range(trials)]
            # resampling draws from the runs' plug-in spread (ddof 0), a little under the sd the planner assumes
            predicted.append(equivalence.power(margin.task, values.std(), n, values.std(), n))
    if planned:
        rows.append({"scenario": "equal, the planned runs per side", "tasks": len(predicted), "studies": len(planned),
                     **{kind: np.mean([o == kind for o in planned]) for kind in ("reproduced", "above", "below",
                                                                                 "inconclusive")},
                     "predicted reproduced": np.mean(predicted)})
    return pd.DataFrame(rows)


def aggregate_rates(suite: str, method: str, trials: int, runs: int = 5, reps: int = 1_000, seed: int = 0
                    ) -> pd.DataFrame:
    """The same for the aggregate (IQM) verdict: whole synthetic studies of `runs` runs per task."""
    margin = equivalence.margin(suite)
    scores = planning._published_matrix(suite, method)
    tasks = sorted(scores["task"].unique())
    values = [scores.loc[scores["task"] == t, "score"].to_numpy() for t in tasks]
    rng = np.random.default_rng(seed)
    rows = []
    for name, shift in (("equal", 0.0), ("at the margin", 1.0), ("1.5 margins apart", 1.5)):
        outcomes = []
        for trial in range(trials):
            ours = np.stack([rng.choice(v, runs) for v in values], axis=1) + shift * margin.aggregate
            reference = np.stack([rng.choice(v, runs) for v in values], axis=1)
            a, b = stats.difference_bootstrap(ours, reference, "iqm", reps, trial)
            lower, upper = stats.percentile_interval(a - b, equivalence.expanded_level(runs))
            outcomes.append(equivalence.judge(lower, upper, margin.aggregate))
        rows.append({"scenario": f"IQM, {name}, {runs} runs a side", "tasks": len(tasks), "studies": trials,
                     **{kind: np.mean([o == kind for o in outcomes]) for kind in ("reproduced", "above", "below",
                                                                                  "inconclusive")}})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m results.calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="atari26")
    parser.add_argument("--method", default="dreamerv3", help="the published method whose runs are resampled")
    parser.add_argument("--trials", type=int, default=400, help="synthetic studies per task and scenario")
    parser.add_argument("--aggregate-trials", type=int, default=200, help="synthetic studies of the IQM verdict")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    margin = equivalence.margin(args.suite)
    print(f"# Verdict error rates on {args.suite}, resampling the published runs of {args.method}\n\n"
          f"Margin ±{margin.task:.3g} per task, ±{margin.aggregate:.3g} for the IQM ({margin.units}).\n")
    print(tables.markdown(per_task_rates(args.suite, args.method, args.trials, args.seed)))
    if args.aggregate_trials:
        print(tables.markdown(aggregate_rates(args.suite, args.method, args.aggregate_trials, seed=args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
