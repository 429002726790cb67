"""Everything a report says about one suite: final scores, checks, tables, verdicts and plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from results import checks, equivalence, final, normalize, plots, provenance, reference, scaling, stats, tables
from results.load import Data

# Replicates for per-task CIs, profiles, probability of improvement and curves (rliable's defaults for
# the last three); aggregates and verdicts use Options.reps.
SMALL_REPS = 2_000
MAX_PAIRS = 8
# Published reference scores that define Atari's normalisation: in the per-task tables only.
REFERENCE_METHODS = {"human", "random"}


@dataclass
class Options:
    reps: int = 50_000
    seed: int = 0
    rule: dict | None = None  # overrides every run's final-score rule
    normaliser: str | None = None
    include_flagged: bool = False
    compare_published: bool = False
    plots: bool = True
    paper_formats: bool = True  # PDF twins of the PNG plots and TeX of the CSV tables, for papers
    improvement: str = "default"  # 'variants': P(X > Y) between the variants of each agent instead
    tasks: list[str] | None = None  # the tasks aggregates use instead of the suite's (--tasks)
    against: str | None = None  # a method whose runs are the reference of every other method's verdicts (--against)
    margin: float | None = None  # the per-task equivalence margin instead of the suite's (--margin)
    aggregate_margin: float | None = None  # the aggregates' margin instead of the suite's (--aggregate-margin)

    def suite_tasks(self, suite: str) -> list[str]:
        """The tasks this report aggregates over: --tasks, else the suite's own task set."""
        return list(self.tasks) if self.tasks else reference.suite_tasks(suite)


@dataclass
class SuiteReport:
    suite: str
    table: pd.DataFrame  # judged final scores, one row per run
    labels: list[str]
    rules: pd.DataFrame
    per_task: pd.DataFrame
    aggregates: pd.DataFrame
    reproduction: list[pd.DataFrame] = field(default_factory=list)
    reproduction_aggregate: list[pd.DataFrame] = field(default_factory=list)
    second: pd.DataFrame = field(default_factory=pd.DataFrame)
    compute: pd.DataFrame = field(default_factory=pd.DataFrame)
    flagged: pd.DataFrame = field(default_factory=pd.DataFrame)
    figures: list[Path] = field(default_factory=list)
    margin: equivalence.Margin | None = None  # of the verdicts, where there are any
    warnings: list[str] = field(default_factory=list)


def _order(table: pd.DataFrame) -> list[str]:
    """New runs first, then official-log runs, then published methods by name."""
    rank = {"new": 0, "logdir": 1, "published": 2}
    pairs = table[["label", "source"]].drop_duplicates()
    return [l for _, l in sorted(zip(pairs["source"].map(rank), pairs["label"]))]


def _second_rule(data: Data, options: Options) -> pd.DataFrame:
    """Per-task numbers of the runs' `second` rule (e.g. Atari100k's evaluation after training)."""
    seconds = [final.second_rule(r) for r in data.runs["final_score"] if final.second_rule(r)]
    if options.rule or not seconds or any(r != seconds[0] for r in seconds):
        return pd.DataFrame()  # no second rule, or several: nothing to show side by side
    rule = seconds[0]
    scores = final.final_scores(data, rule, options.normaliser)
    scores = scores[scores["score"].notna()]
    scores = scores.assign(label=[checks.label(m, s) for m, s in zip(scores["method"], scores["source"])],
                           excluded=False)
    ours = scores.loc[scores["source"] != "published", "task"].unique()  # the tasks of our runs
    scores = scores[scores["task"].isin(ours)]
    return tables.per_task(scores, min(options.reps, SMALL_REPS), options.seed).assign(rule=final.describe(rule))


def _cost(runs: pd.DataFrame, method: str) -> pd.DataFrame:
    """Per task, what a new run of `method` cost on average, and where it ran."""
    ours = runs[(runs["source"] == "new") & (runs["method"] == method)]
    return ours.groupby("task").agg(hours_per_run=("wall_hours", "mean"), gpu_hours_per_run=("gpu_hours", "mean"),
                                    device=("device", lambda d: ", ".join(sorted(set(d))))).reset_index()


def _reproductions(report: SuiteReport, runs: pd.DataFrame, options: Options) -> None:
    table = report.table
    for new in table.loc[table["source"] == "new", "method"].unique():
        new_label = checks.label(new, "new")
        published = reference.counterpart(new)
        if published not in set(table.loc[table["source"] == "published", "method"]):
            report.warnings.append(f"no per-run published data of '{published}' in the shipped files or --published; "
                                   f"the reproduction of {new_label} uses the shipped paper tables where they have it")
        _add_verdicts(report, runs, new, new_label, published, options, reference_grows=False)


def _add_verdicts(report: SuiteReport, runs: pd.DataFrame, new: str, new_label: str, reference_label: str,
                  options: Options, reference_grows: bool) -> None:
    """Per-task and aggregate verdicts of `new_label` against `reference_label`'s runs, with their cost.
    reference_grows: the reference is runs of ours, which can get more seeds too."""
    margin = report.margin = equivalence.margin(report.suite, options.margin, options.aggregate_margin)
    verdicts = tables.reproduction(report.table, new_label, reference_label, report.suite, margin.task, reference_grows)
    report.reproduction.append(verdicts.merge(_cost(runs, new), on="task", how="left"))
    aggregate = tables.reproduction_aggregate(report.table, new_label, reference_label, options.reps, options.seed,
                                              margin.aggregate, reference_grows)
    if len(aggregate):
        report.reproduction_aggregate.append(aggregate)


def _against(report: SuiteReport, runs: pd.DataFrame, options: Options) -> None:
    """Verdicts of every other method of ours against the runs of `options.against` (e.g. dreamerv3 against
    dreamerv3_official run in the same harness), with the same machinery as against published runs."""
    table = report.table
    reference_labels = table.loc[table["method"] == options.against, "label"].unique()
    if len(reference_labels) == 0:
        raise ValueError(f"--against {options.against}: no runs of it in suite {report.suite}; "
                         f"loaded methods: {', '.join(sorted(table['method'].unique()))}")
    reference_label = reference_labels[0]
    for new in table.loc[(table["source"] != "published") & (table["method"] != options.against), "method"].unique():
        new_label = checks.label(new, table.loc[table["method"] == new, "source"].iloc[0])
        _add_verdicts(report, runs, new, new_label, reference_label, options, reference_grows=True)


def _agent(label: str) -> str:
    """The agent of a label: 'ppo [discrete.lr=0.001] (new)' -> 'ppo'."""
    return label.split(" [")[0].split(" (")[0]


def _is_published(table: pd.DataFrame, label: str) -> bool:
    return bool((table.loc[table["label"] == label, "source"] == "published").all())


def _plots(report: SuiteReport, data: Data, aggregate_labels: list[str], folder: Path, options: Options) -> None:
    suite, table, pdf = report.suite, report.table, options.paper_formats
    colors = plots.palette(report.labels)
    normaliser = table["normaliser"].iloc[0]
    score = plots.score_label(normaliser)
    budget = reference.suite_defaults(suite)["budget_frames"]
    if not (data.runs["source"] == "published").any():  # only runs of ours: their own budget, e.g. shortened runs
        budget = int(data.runs["budget_frames"].max())
    labels = pd.Series([checks.label(m, s) for m, s in zip(data.episodes["method"], data.episodes["source"])],
                       index=data.episodes.index)
    shown = ~(labels.isin(REFERENCE_METHODS) & (data.episodes["source"] == "published")).to_numpy()
    curves = plots.binned_curves(data.episodes[shown], labels[shown], budget)
    new_tasks = sorted(table.loc[table["source"] != "published", "task"].unique())
    tasks = new_tasks or sorted(table["task"].unique())
    xlabel = "frames" if suite.startswith("atari") else "env steps"
    per_task = report.per_task[~report.per_task["method"].isin(REFERENCE_METHODS)]
    if len(curves) or len(per_task):
        report.figures += plots.learning_curves(curves, table, per_task, tasks, colors, folder,
                                                f"{suite}_curves", xlabel, options.seed, pdf=pdf)
    if len(report.aggregates):
        report.figures += plots.aggregate_intervals(report.aggregates, colors, folder, f"{suite}_aggregates", score,
                                                    pdf=pdf)
        tasks = options.suite_tasks(suite) if not options.include_flagged else None
        matrices = {l: tables.matrix(table[(table["label"] == l) & ~table["excluded"]], "score", tasks)
                    for l in aggregate_labels}
        reps = min(options.reps, SMALL_REPS)
        report.figures += plots.performance_profiles(matrices, colors, folder, f"{suite}_profiles", score, reps,
                                                     options.seed, pdf=pdf)
        # P(ours > each other method); without runs of ours, the best method (IQM) against the others.
        by_iqm = report.aggregates.sort_values("iqm", ascending=False)["method"].tolist()
        ours = [l for l in aggregate_labels if not _is_published(table, l)] or by_iqm[:1]
        candidates = [(x, y) for x in ours for y in by_iqm if y != x]
        name = f"{suite}_improvement"
        if options.improvement == "variants":  # each pair of variants of one agent, the better one first
            candidates = [(x, y) for i, x in enumerate(by_iqm) for y in by_iqm[i + 1:] if _agent(x) == _agent(y)
                          and not _is_published(table, x) and not _is_published(table, y)]
            name += "_variants"
        # rliable splits a pair's key at its comma: a variant's label says 'size=12m; train_ratio=512' there
        key = {label: label.replace(",", ";") for label in matrices}
        pairs = {f"{key[x]},{key[y]}": stats.probability_of_improvement(matrices[x], matrices[y], reps, options.seed)
                 for x, y in candidates if matrices[x].shape[1] == matrices[y].shape[1]}
        pairs = dict(list(pairs.items())[:MAX_PAIRS])
        if pairs:
            report.figures += plots.improvement(pairs, {key[l]: c for l, c in colors.items() if l in key}, folder, name,
                                                pdf=pdf)
        elif options.improvement == "variants":
            report.warnings.append("--improvement variants: no two variants of one agent have aggregates")
    report.figures += scaling.scaling_plots(table, data.runs, suite, folder, min(options.reps, SMALL_REPS),
                                            options.seed, score, pdf=pdf)
    efficiency = _sample_efficiency(curves, table, suite, normaliser, options)
    if efficiency:
        report.figures += plots.sample_efficiency(efficiency, colors, folder, f"{suite}_sample_efficiency",
                                                  xlabel, f"IQM {score}", pdf=pdf)


def _sample_efficiency(curves: pd.DataFrame, table: pd.DataFrame, suite: str, normaliser: str,
                       options: Options) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """IQM of normalised binned curves per step for labels with curves on every task of the suite."""
    if normalize.canonical(normaliser) in normalize.EPISODE or curves.empty:
        return {}
    tasks = options.suite_tasks(suite)
    result = {}
    for label, group in curves.groupby("label"):
        if set(group["task"]) != set(tasks):
            continue
        group = group.assign(score=normalize.normalise(normaliser, group["task"], group["score"]))
        cube = group.pivot_table(index=["task", "seed"], columns="step", values="score")
        if set(cube.index.get_level_values("task")) != set(tasks):  # a task without any scored bin
            continue
        steps = cube.columns.to_numpy()
        runs = cube.groupby(level="task").size().min()
        array = np.stack([cube.loc[t].to_numpy()[:runs] for t in tasks], axis=1)  # (runs, tasks, steps)
        finite = np.isfinite(array).all(axis=(0, 1))
        if finite.sum() < 2:
            continue
        points, intervals = stats.curve_estimates(array[..., finite], "iqm", min(options.reps, SMALL_REPS), options.seed)
        result[label] = (steps[finite], points, intervals)
    return result


def _aggregate_labels(table: pd.DataFrame, labels: list[str], missing: dict[str, list[str]], n_tasks: int,
                      include_flagged: bool) -> list[str]:
    """Labels with usable runs of every task (of any task with --include-flagged), reference scores left out."""
    chosen = [l for l in labels if (len(missing[l]) < n_tasks if include_flagged else not missing[l])]
    if table["normaliser"].iloc[0].startswith("atari"):  # published human and random scores are 1 and 0 by definition
        chosen = [l for l in chosen if l not in REFERENCE_METHODS]
    return chosen


def _aggregates(table: pd.DataFrame, labels: list[str], missing: dict[str, list[str]], tasks: list[str],
                options: Options) -> pd.DataFrame:
    if not labels:
        return pd.DataFrame()
    if not options.include_flagged:
        return tables.aggregates(table, labels, tasks, options.reps, options.seed)
    return pd.concat([tables.aggregates(table, [l], sorted(set(tasks) - set(missing[l])), options.reps, options.seed)
                      for l in labels])  # each label over the tasks it has


def _warnings(table: pd.DataFrame, labels: list[str], aggregate_labels: list[str], missing: dict[str, list[str]],
              tasks: list[str], aggregates: pd.DataFrame) -> list[str]:
    """What a reader must know about the aggregates and the final scores."""
    warnings = []
    for label in labels:
        shown = ", ".join(missing[label][:6]) + (" ..." if len(missing[label]) > 6 else "")
        if missing[label] and label not in aggregate_labels:
            warnings.append(f"{label} is left out of the aggregates: no usable run of {len(missing[label])} "
                            f"of the suite's {len(tasks)} tasks ({shown})")
        elif missing[label]:  # only with --include-flagged
            warnings.append(f"{label} is aggregated over {len(tasks) - len(missing[label])} of {len(tasks)} "
                            f"tasks: not comparable with the full-suite aggregates")
    for label in aggregate_labels:
        counts = table[(table["label"] == label) & ~table["excluded"]].groupby("task").size()
        if counts.nunique() > 1:
            warnings.append(f"{label} has {counts.min()} to {counts.max()} usable runs per task; its aggregates "
                            f"use the {counts.min()} lowest seeds of each task")
    single = [r["method"] for _, r in aggregates.iterrows() if r["runs"] == 1]
    if single:
        warnings.append(f"one run per task for {', '.join(single)}: their confidence intervals are degenerate")
    for name, group in table[table["fallback"]].groupby("label"):
        warnings.append(f"{len(group)} run(s) of {name} had no episode in the final-score window "
                        f"({', '.join(sorted(set(group['task'])))}); their last episode before it counts")
    return warnings


def analyse(data: Data, suite: str, folder: Path, options: Options) -> SuiteReport:
    """Tables, verdicts and plots of one suite; plots go to `folder`."""
    finals = final.final_scores(data, options.rule, options.normaliser)
    table = checks.judge(finals, data.runs, suite, options.include_flagged)
    labels = _order(table)
    rules = (table.groupby("label", sort=False)
             .agg(source=("source", "first"), run_task_pairs=("seed", "size"),
                  usable=("excluded", lambda e: int((~e).sum())),
                  tasks=("task", "nunique"), rule=("rule", "first"), normaliser=("normaliser", "first"))
             .reindex(labels).reset_index().rename(columns={"label": "method"}))
    tasks = options.suite_tasks(suite)
    missing = checks.coverage(table, tasks)
    aggregate_labels = _aggregate_labels(table, labels, missing, len(tasks), options.include_flagged)
    report = SuiteReport(suite, table, labels, rules, tables.per_task(table, min(options.reps, SMALL_REPS), options.seed),
                         _aggregates(table, aggregate_labels, missing, tasks, options))
    report.warnings = (_warnings(table, labels, aggregate_labels, missing, tasks, report.aggregates)
                       + provenance.warnings(data.runs) + data.warnings)
    if options.compare_published:
        _reproductions(report, data.runs, options)
    if options.against:
        _against(report, data.runs, options)
    report.second = _second_rule(data, options)
    report.compute = tables.compute(data.runs)
    listed = table[(table["source"] != "published") | (table["flags"] != "")]
    report.flagged = listed[["label", "task", "seed", "state", "raw", "n_episodes", "flags", "note"]]
    if options.plots:
        _plots(report, data, aggregate_labels, folder, options)
    return report
