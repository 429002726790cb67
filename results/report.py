"""`python -m results.report <paths...>`: paper tables, plots and reproduction verdicts.

    python -m results.report runs/ --suite atari26 --compare published        # the shipped published data
    python -m results.report runs/ --suite atari26 --compare published --published my_scores/  # adds/replaces files
    python -m results.report runs/ --suite atari57 --tasks pong breakout --out report/
    python -m results.report runs/fidelity --against dreamerv3_official --include-flagged   # one agent against another
    python -m results.report --plan-seeds --suite atari26 --method dreamerv3   # runs a conclusive verdict needs

Paths are run directories (or folders holding them), official DreamerV3 log directories and published
score files. Writes <out>/report.md, <out>/tables/*.csv and *.tex, <out>/plots/*.png and *.pdf; file names
that hold a method's label name it by its slug ('dreamerv3 (new)' -> 'dreamerv3-new').
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from results import equivalence, final, planning, reference, tables
from results.analysis import SMALL_REPS, Options, SuiteReport, analyse
from results.load import Data, concat, load
from results.names import canonical_suite, canonical_task


def published_paths(suite: str, published: str | None = None) -> list[Path]:
    """The published files of a suite: the shipped ones (results/published), of which a file of the same
    name in `published` (gzipped or not) takes the place, plus the other files of `published`."""
    shipped = reference.published_files(suite)
    if not published:
        return shipped
    folder = Path(published)
    given = {p.relative_to(folder).as_posix() for p in folder.rglob("*.json*")} | {
        p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml")}
    kept = [p for p in shipped if not any(reference.same_file(p.relative_to(reference.PUBLISHED).as_posix(), g)
                                          for g in given)]
    return kept + [folder]


def _load(paths: list[str], suite: str | None, published: str | None, compare: bool) -> Data:
    data = load(paths, suite)
    if compare:
        suites = [suite] if suite else sorted(data.episodes["suite"].unique())
        data = concat([data] + [load(published_paths(s, published), s) for s in suites])
    return data


def _select_methods(data: Data, methods: list[str] | None, compare: bool) -> Data:
    """The listed methods, plus the published counterparts of listed methods when comparing."""
    if not methods:
        return data
    loaded = set(data.episodes["method"])
    # an agent's name selects all its variants too ('ppo' -> 'ppo [discrete.lr=0.001]', ...)
    variants = {m for m in loaded for name in methods if m.startswith(f"{name} [")}
    wanted = set(methods) | variants | ({reference.counterpart(m) for m in methods} if compare else set())
    unknown = {m for m in methods if m not in loaded and not any(v.startswith(f"{m} [") for v in variants)}
    if unknown:
        raise ValueError(f"no runs of method(s) {sorted(unknown)}; loaded methods: "
                         f"{', '.join(sorted(data.episodes['method'].unique()))}")
    return data.select(methods=sorted(wanted))


def _select_tasks(data: Data, tasks: list[str]) -> Data:
    """Only the listed tasks (names in any spelling); unknown names list the loaded tasks."""
    loaded = set(data.episodes["task"])
    unknown = [t for t in tasks if t not in loaded]
    if unknown:
        raise ValueError(f"no runs of task(s) {unknown}; loaded tasks: {', '.join(sorted(loaded))}")
    return Data(data.episodes[data.episodes["task"].isin(tasks)], data.runs[data.runs["task"].isin(tasks)],
                list(data.warnings))


def _wide_per_task(per_task: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Tasks as rows, methods as columns, 'mean [lower, upper] (runs)' cells."""
    cells = per_task.assign(cell=[f"{c} ({n}{', flagged' if f else ''})" for c, n, f in zip(
        tables.with_ci(per_task, "mean", "lower", "upper"), per_task["runs"], per_task["flagged"])])
    wide = cells.pivot(index="task", columns="method", values="cell")
    return wide.reindex(columns=[l for l in labels if l in wide.columns]).fillna("–").reset_index()


def _aggregate_shown(aggregates: pd.DataFrame) -> pd.DataFrame:
    shown = aggregates[["method", "runs", "tasks"]].copy()
    for metric in ("median", "iqm", "mean", "optimality_gap"):
        shown[metric] = tables.with_ci(aggregates, metric, f"{metric}_lower", f"{metric}_upper")
    return shown


def _reproduction_shown(frame: pd.DataFrame, side: str) -> pd.DataFrame:
    """`side` names the reference column: 'published', or 'reference' for --against."""
    shown = frame[["task", "published", "new", "published_runs", "new_runs"]].copy()
    shown["published mean"] = tables.with_ci(frame, "published_mean", "published_lower", "published_upper")
    shown["new mean"] = tables.with_ci(frame, "new_mean", "new_lower", "new_upper")
    shown["ratio"] = frame.get("ratio")
    shown["new - published (90% CI)"] = tables.with_ci(frame, "diff", "diff_lower", "diff_upper")
    shown["margin"] = frame["margin"]
    shown["verdict"] = frame["verdict"]
    if side == "published":
        shown["published from"] = frame["published_from"]
    shown["hours per run"] = frame.get("hours_per_run")
    shown["device"] = frame.get("device")
    return shown.rename(columns=lambda c: c.replace("published", side))


def _aggregate_reproduction_shown(frame: pd.DataFrame, side: str) -> pd.DataFrame:
    shown = frame[["metric", "tasks", "published", "new"]].copy()
    shown["published"] = [f"{p}: {v}" for p, v in zip(frame["published"], tables.with_ci(
        frame, "published_value", "published_lower", "published_upper"))]
    shown["new"] = [f"{n}: {v}" for n, v in zip(frame["new"], tables.with_ci(frame, "new_value", "new_lower", "new_upper"))]
    shown["ratio"] = frame["ratio"]
    shown["new - published (90% CI)"] = tables.with_ci(frame, "diff", "diff_lower", "diff_upper")
    shown["margin"] = frame["margin"]
    shown["verdict"] = frame["verdict"]
    return shown.rename(columns=lambda c: c.replace("published", side))


def _side(frame: pd.DataFrame, options: Options) -> str:
    """'reference' where the verdict is against --against's runs, else 'published'."""
    against = options.against and frame["published"].iloc[0].split(" (")[0] == options.against
    return "reference" if against else "published"


def _verdict_rule(report: SuiteReport, level: str, side: str) -> str:
    """The paragraph above a verdict table: the test, the margin and its reason."""
    margin = report.margin
    delta = margin.task if level == "task" else margin.aggregate
    interval = ("the 90% Welch t interval of (new mean - " + side + " mean); means (raw scores) with their 95% t "
                "CIs, a paper table's mean counts as exact, ratio = new mean / " + side + " mean" if level == "task" else
                "the 90% expanded percentile interval of rliable's stratified bootstrap, widened for few runs")
    return (f"Verdict (an equivalence test, docs/reference/reports.md): {interval}. Difference in {margin.units}. "
            f"Inside ±δ with δ = {delta:.3g}: reproduced; wholly beyond +δ or -δ: above or below; otherwise "
            "inconclusive, with the runs that give a conclusive verdict with 80% power if the two agree. "
            f"Margin: {margin.reason}\n")


def reproduction_sections(report: SuiteReport, folder: Path, options: Options) -> list[str]:
    """The verdict sections of a suite (aggregates, then per task) as Markdown; their tables go to `folder`."""
    lines, suite, tex = [], report.suite, options.paper_formats
    for frame in report.reproduction_aggregate:
        shown = _aggregate_reproduction_shown(frame, _side(frame, options))
        lines += [f"### Reproduction of {frame['published'].iloc[0]} by {frame['new'].iloc[0]}: aggregates\n",
                  _verdict_rule(report, "aggregate", _side(frame, options)), tables.markdown(shown)]
        tables.write(frame, folder, f"{suite}_reproduction_aggregate_{frame['published'].iloc[0]}", shown, tex)
    for frame in report.reproduction:
        if frame.empty:
            continue
        side = _side(frame, options)
        shown = _reproduction_shown(frame.reindex(columns=sorted(set(frame.columns) | {
            "published_mean", "published_lower", "published_upper", "new_mean", "new_lower", "new_upper",
            "ratio", "diff", "diff_lower", "diff_upper", "margin", "hours_per_run", "device"})), side)
        lines += [f"### Reproduction of {frame['published'].iloc[0]} by {frame['new'].iloc[0]}: per task\n",
                  _verdict_rule(report, "task", side), tables.markdown(shown)]
        tables.write(frame, folder, f"{suite}_reproduction_{frame['published'].iloc[0]}", shown, tex)
    return lines


def write_suite(report: SuiteReport, out: Path, options: Options) -> str:
    """The suite's section of report.md; its tables go to out/tables."""
    folder, suite, tex = out / "tables", report.suite, options.paper_formats
    lines = [f"## {suite}\n"]
    lines += ["### Methods, runs and final-score rules\n", tables.markdown(report.rules)]
    tables.write(report.rules, folder, f"{suite}_methods", tex=tex)
    if report.warnings:
        lines += ["### Warnings\n", "\n".join(f"- {w}" for w in report.warnings) + "\n"]
    if len(report.aggregates):
        shown = _aggregate_shown(report.aggregates)
        tasks = options.suite_tasks(suite)
        over = (f"over the {len(tasks)} tasks given with --tasks ({', '.join(tasks)})" if options.tasks
                else f"over the suite's {len(tasks)} tasks")
        lines += [f"### Aggregates ({report.table['normaliser'].iloc[0]} scores, 95% stratified bootstrap CIs, "
                  f"{options.reps:,} replicates)\n", f"Aggregates {over}.\n", tables.markdown(shown)]
        tables.write(report.aggregates, folder, f"{suite}_aggregates", shown, tex)
    lines += reproduction_sections(report, folder, options)
    if len(report.per_task):
        wide = _wide_per_task(report.per_task, report.labels)
        lines += ["### Per task (raw score: mean [95% CI] (runs))\n", tables.markdown(wide)]
        tables.write(report.per_task, folder, f"{suite}_per_task", wide, tex)
    if len(report.second):
        wide = _wide_per_task(report.second, report.labels)
        lines += [f"### Per task, second rule: {report.second['rule'].iloc[0]}\n", tables.markdown(wide)]
        tables.write(report.second, folder, f"{suite}_per_task_second", wide, tex)
    if len(report.flagged):
        lines += ["### Runs of this project and flagged runs\n", tables.markdown(report.flagged)]
        tables.write(report.flagged, folder, f"{suite}_runs", tex=tex)
    if len(report.compute):
        summary = (report.compute.groupby(["method", "device"])
                   .agg(runs=("seed", "size"), wall_hours=("wall_hours", "sum"), hours_per_run=("wall_hours", "mean"),
                        gpu_hours=("gpu_hours", "sum"), cpu_hours=("cpu_hours", "sum")).reset_index())
        lines += ["### Compute of our runs (per run: tables/" + f"{suite}_compute.csv)\n", tables.markdown(summary)]
        tables.write(report.compute, folder, f"{suite}_compute", tex=tex)
    if report.figures:
        lines += ["### Plots\n"] + [f"![{p.stem}](plots/{p.name})\n" for p in report.figures if p.suffix == ".png"]
    return "\n".join(lines)


def build(paths: list[str], out: Path, suite: str | None = None, methods: list[str] | None = None,
          published: str | None = None, options: Options = Options()) -> Path:
    """Write the report of `paths` into `out`; returns the path of report.md."""
    path = out / "report.md"
    path.write_text(markdown(paths, out, suite, methods, published, options))
    return path


def markdown(paths: list[str], out: Path, suite: str | None = None, methods: list[str] | None = None,
             published: str | None = None, options: Options = Options()) -> str:
    """The report of `paths` as Markdown; writes its tables and plots into out/tables and out/plots."""
    start = time.perf_counter()
    suite = canonical_suite(suite) if suite else None
    if published and not Path(published).is_dir():
        raise FileNotFoundError(f"--published {published}: not a folder")
    data = _select_methods(_load(paths, suite, published, options.compare_published), methods, options.compare_published)
    if options.tasks:
        data = _select_tasks(data, options.tasks)
    if data.runs.empty:
        raise ValueError(f"no runs found in {paths}" + (f" for suite {suite}" if suite else ""))
    suites = [suite] if suite else sorted(data.runs["suite"].unique())
    rule_text = final.describe(options.rule) if options.rule else "each run's own (its config; suite defaults for published data)"
    sections = [f"# Results report\n\nSources: {', '.join(map(str, paths))}"
                + ("; published data: shipped (results/published)" if options.compare_published else "")
                + (f", with files from {published}" if published and options.compare_published else "")
                + (f"\n\nTasks: only {', '.join(options.tasks)} (--tasks)" if options.tasks else "")
                + f"\n\nFinal-score rule: {rule_text}. Bootstrap: {options.reps:,} replicates, seed {options.seed}."
                + (" Flagged runs are included in aggregates." if options.include_flagged else
                   " Flagged runs (unfinished, overridden protocol, missing seeds) are left out of aggregates and verdicts.")
                + f" Per-task CIs, profiles, probability of improvement and curves: {min(options.reps, SMALL_REPS):,} replicates."
                + "\n"]
    for name in suites:
        report = analyse(data.select(name), name, out / "plots", options)
        sections.append(write_suite(report, out, options))
    sections.append(f"\n_Report built in {time.perf_counter() - start:.1f} s._\n")
    return "\n".join(sections)


def print_seed_plan(suite: str, method: str, margin: equivalence.Margin) -> None:
    """--plan-seeds: the runs a conclusive verdict needs per task and per aggregate (results.planning)."""
    frame = planning.plan(suite, method, margin)
    print(f"# Runs for a conclusive reproduction of {reference.counterpart(method)} on {suite}\n\n"
          f"Margin: ±{margin.task:.3g} per task, ±{margin.aggregate:.3g} for the aggregates ({margin.units}): "
          f"{margin.reason}\nRuns of ours that give `reproduced` with {equivalence.POWER:.0%} power if ours and the "
          "published runs agree and ours spread as theirs: against the published runs as they are, and per side "
          "where both sides are new runs (--against).\n")
    print(tables.markdown(frame))
    print(f"summary: {planning.summary(frame)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m results.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", help="run directories, DreamerV3 log directories, published files")
    parser.add_argument("--suite", help="only this suite (atari26 alias atari100k, atari57, dmc_proprio, ...)")
    parser.add_argument("--methods", nargs="+", help="only these methods (agent or published method names; a sweep's "
                        "variant as 'ppo [discrete.lr=0.001]'; an agent's name selects all its variants)")
    parser.add_argument("--improvement", choices=["default", "variants"], default="default",
                        help="probability of improvement: ours against the others (default), or between the "
                        "variants of each agent (plots/<suite>_improvement_variants)")
    parser.add_argument("--compare", choices=["published"], help="add reproduction verdicts against published runs")
    parser.add_argument("--against", metavar="METHOD", help="verdicts of every other method against this method's "
                        "runs, e.g. dreamerv3 against dreamerv3_official run side by side (an agent name)")
    parser.add_argument("--published", help="a folder of published score files that add to or replace the shipped "
                        "ones (results/published; names as in results/reference/published.yaml)")
    parser.add_argument("--tasks", nargs="+", help="only these tasks; aggregates then cover this subset and say so")
    parser.add_argument("--out", default="report", help="output folder (default: report)")
    parser.add_argument("--rule", help="final-score rule for all curves, e.g. 'last_fraction:fraction=0.1' or "
                        "'train_window:start=390000,end=400000'")
    parser.add_argument("--normaliser", help="normaliser for all runs (atari_human, atari_record, raw, ...)")
    parser.add_argument("--reps", type=int, default=50_000, help="bootstrap replicates (default 50000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--include-flagged", action="store_true", help="average flagged runs too")
    parser.add_argument("--margin", type=float, help="the per-task equivalence margin of the verdicts, in the "
                        "suite's normalised score (default: the suite's, results/reference/margins.yaml)")
    parser.add_argument("--aggregate-margin", type=float, help="the margin of the aggregate (IQM, mean) verdicts")
    parser.add_argument("--plan-seeds", action="store_true", help="print the runs per task a conclusive verdict "
                        "needs, from the shipped published runs of --method on --suite, and write nothing")
    parser.add_argument("--method", help="with --plan-seeds: the agent or published method to reproduce")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    suite = canonical_suite(args.suite) if args.suite else None
    if args.plan_seeds:
        if not (suite and args.method):
            parser.error("--plan-seeds needs --suite and --method")
        print_seed_plan(suite, args.method, equivalence.margin(suite, args.margin, args.aggregate_margin))
        return 0
    if not args.paths:
        parser.error("give run directories or published files to report on (or --plan-seeds)")
    tasks = [canonical_task(suite, t) for t in args.tasks] if args.tasks and suite else args.tasks
    options = Options(reps=args.reps, tasks=tasks, seed=args.seed, rule=final.parse_rule(args.rule) if args.rule else None,
                      normaliser=args.normaliser, include_flagged=args.include_flagged,
                      compare_published=args.compare == "published", plots=not args.no_plots,
                      improvement=args.improvement, against=args.against, margin=args.margin,
                      aggregate_margin=args.aggregate_margin)
    path = build(args.paths, Path(args.out), args.suite, args.methods, args.published, options)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (ValueError, FileNotFoundError) as error:  # bad input: the message names the valid choices
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)
