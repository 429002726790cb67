"""`python -m results.fidelity [RUNS] [--suite SUITE ...] [--out docs/fidelity.md]`: our DreamerV3 beside
the official code.

`make fidelity` runs `agent=dreamerv3` and `agent=dreamerv3_official` with identical settings into
runs/fidelity (DMC proprio and DMC vision studies, `make fidelity-proprio` and `make fidelity-vision`),
then this. It refuses runs whose two sides differ in any setting that shapes learning (protocol, envs,
size, train ratio, batch, replay, dtype) and writes one page per suite, docs/fidelity/<suite>.md, with the
report of dreamerv3's verdicts against the official runs (`results.report --against dreamerv3_official
--include-flagged`: the runs are shorter than the paper's, which flags them) in docs/fidelity/<suite>/
(what the page shows only: PNG plots and the CSVs of its tables, no PDF or TeX, no report.md),
and the training metrics both sides log (losses, entropies, updates made) side by side, which show where
the two sides' learning parts ways when their scores do. The front page, docs/fidelity.md, sums up
every suite page there, so one suite's study can be rerun without the others.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from results import equivalence, final, normalize, report, runinfo, stats, tables
from results.analysis import Options, SuiteReport

OURS, OFFICIAL = "dreamerv3", "dreamerv3_official"
AGENT_KEYS = ("envs", "size", "train_ratio", "batch_size", "batch_length", "compute_dtype", "replay")
REPLAY_KEYS = ("capacity", "online")
COMMAND = "make fidelity"
# Training metrics both sides log for the same quantity (tests/official compares them on identical
# inputs), ours and the official name; decoder losses pair our `loss/rec_<key>` with its `loss/<key>`.
DIAGNOSTICS = {
    "loss dyn": ("train/loss/dyn", "train/loss/dyn"), "loss rep": ("train/loss/rep", "train/loss/rep"),
    "loss reward": ("train/loss/rew", "train/loss/rew"), "loss continue": ("train/loss/con", "train/loss/con"),
    "loss policy": ("train/loss/policy", "train/loss/policy"), "loss value": ("train/loss/value", "train/loss/value"),
    "loss replay value": ("train/loss/repval", "train/loss/repval"),
    "entropy policy": ("train/policy_entropy", "train/ent/action"),
    "entropy posterior": ("train/post_entropy", "train/rep_ent"), "entropy prior": ("train/prior_entropy", "train/dyn_ent"),
    # imagination: what the actor's and critic's losses are made of (the official `imag_loss` metrics;
    # its `tar` is the raw return: `valnorm` is none)
    "imagined reward": ("train/imag_rew", "train/rew"), "imagined continue": ("train/imag_con", "train/con"),
    "imagination weight": ("train/imag_weight", "train/weight"), "imagined return": ("train/ret", "train/tar"),
    "value": ("train/value", "train/val"), "slow value": ("train/slow_value", "train/slowval"),
    "advantage": ("train/adv", "train/adv"), "advantage std": ("train/adv_std", "train/adv_std"),
    "advantage magnitude": ("train/adv_mag", "train/adv_mag"),
}
DECODER = ("train/loss/rec_", "train/loss/")
VERDICT_START = "Verdict per task"  # the page's paragraph that states the rule (rejudge replaces it)
LATE = 0.9  # diagnostics average the metrics logged after this fraction of a run's agent steps


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """What must be equal on both sides: the suite's protocol and env, the agent's shared keys, env workers.
    Of the replay, what it samples (capacity, online queue); how ours stores it (chunk, store) is ours alone."""
    agent = {k: config["agent"].get(k) for k in AGENT_KEYS}
    agent["replay"] = {k: v for k, v in (agent["replay"] or {}).items() if k in REPLAY_KEYS}
    return {"protocol": config["suite"]["protocol"], "env": config["suite"].get("env"),
            "parallel_envs": config["run"]["parallel_envs"], **agent}


def _train_log(run: Path) -> dict[str, Any]:
    """From a run's metrics.jsonl: the updates its log last counted, and its train metrics averaged over
    the log lines after LATE of its agent steps (`late`)."""
    log = run / "metrics.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.exists() else []
    lines = [x for x in lines if any(k.startswith("train/") for k in x)]
    if not lines:
        return {"updates": 0.0, "late": {}}
    late = [x for x in lines if x["agent_step"] >= LATE * max(x["agent_step"] for x in lines)]
    keys = {k for x in late for k in x if k.startswith("train/")}
    return {"updates": max(x.get("train/updates", 0.0) for x in lines),
            "late": {k: float(np.mean([x[k] for x in late if k in x])) for k in keys}}


def _runs(root: Path) -> pd.DataFrame:
    """One row per run directory under `root` of either side: suite, task, seed, agent, settings, meta."""
    rows = []
    for path in sorted(root.rglob("config.yaml")):
        config = yaml.safe_load(path.read_text())
        agent = config.get("agent", {}).get("name")
        if agent not in (OURS, OFFICIAL) or config.get("variant"):
            continue
        meta = runinfo.read_record(path.parent / "meta.json")
        rows.append({"suite": config["suite"]["name"], "task": config["task"], "seed": int(config["seed"]),
                     "agent": agent, "settings": _settings(config), "device": meta.get("device", "unknown"),
                     "versions": meta.get("versions", {}), "commit": meta.get("git_commit") or "not recorded",
                     "dirty": bool(meta.get("git_dirty")), "wall_s": (meta.get("compute") or {}).get("wall_seconds", 0.0),
                     "train_after": config["agent"].get("train_after"), "path": str(path.parent),
                     "warmup": (config["agent"].get("optimizer") or {}).get("warmup"),
                     "done": runinfo.read_record(path.parent / "status.json").get("state") == "done",
                     **_train_log(path.parent)})
    return pd.DataFrame(rows, columns=["suite", "task", "seed", "agent", "settings", "device", "versions", "commit",
                                       "dirty", "wall_s", "train_after", "path", "warmup", "done", "updates",
                                       "late"])


def finished_pairs(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs of (suite, task, seed) finished on both sides, and the pairs left out (one side or both
    still going, stopped or failed): a seed counts only when both sides have its whole budget."""
    done = runs[runs["done"]].groupby(["suite", "task", "seed"])["agent"].nunique()
    complete = set(done[done == 2].index)
    key = list(zip(runs["suite"], runs["task"], runs["seed"]))
    used = runs[[k in complete for k in key]]
    left = sorted({f"{t} seed {s}" for u, t, s in key if (u, t, s) not in complete})
    return used, left


def check_identical(runs: pd.DataFrame) -> None:
    """Raise unless every (suite, task) has runs of both sides with the same seeds and the same settings."""
    if runs.empty:
        raise ValueError(f"no runs of {OURS} or {OFFICIAL} found")
    problems = []
    for (suite, task), group in runs.groupby(["suite", "task"]):
        seeds = {a: sorted(group.loc[group["agent"] == a, "seed"]) for a in (OURS, OFFICIAL)}
        if seeds[OURS] != seeds[OFFICIAL]:
            problems.append(f"{suite}/{task}: seeds {seeds[OURS]} of {OURS} but {seeds[OFFICIAL]} of {OFFICIAL}")
        first = group.iloc[0]  # every run is compared with the first one of the task
        for _, run in group.iloc[1:].iterrows():
            differ = sorted(k for k in set(first["settings"]) | set(run["settings"])
                            if first["settings"].get(k) != run["settings"].get(k))
            if differ:
                problems.append(f"{suite}/{task}: {', '.join(differ)} of {run['agent']} seed {run['seed']} differ from "
                                f"{first['agent']} seed {first['seed']}")
    for _, run in runs[runs["agent"] == OURS].iterrows():  # the official code starts to train on a full batch
        start, s = run["train_after"], run["settings"]
        if start is not None and start != s["batch_size"] * s["batch_length"]:
            problems.append(f"{run['suite']}/{run['task']} seed {run['seed']} of {OURS}: train_after {start}, but the "
                            f"official code starts training when replay holds batch_size x batch_length = "
                            f"{s['batch_size'] * s['batch_length']} windows")
    if problems:
        raise ValueError("the two sides did not run identical settings:\n  " + "\n  ".join(problems))


def _settings_table(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (suite, task), group in runs.groupby(["suite", "task"]):
        s = group["settings"].iloc[0]
        rows.append({"suite": suite, "task": task, "seeds per side": group["seed"].nunique(),
                     "agent steps": s["protocol"]["budget"], "action repeat": s["protocol"]["action_repeat"],
                     "size": s["size"], "train ratio": s["train_ratio"], "envs": s["envs"],
                     "batch": f"{s['batch_size']} x {s['batch_length']}", "replay": s["replay"]["capacity"],
                     "dtype": s["compute_dtype"],
                     **{f"updates per run, {a}": round(group.loc[group["agent"] == a, "updates"].mean())
                        for a in (OURS, OFFICIAL)},
                     **{f"wall h per run, {a}": round(group.loc[group["agent"] == a, "wall_s"].mean() / 3600, 2)
                        for a in (OURS, OFFICIAL)}})
    return pd.DataFrame(rows)


def _warmup_caveat(runs: pd.DataFrame) -> str:
    """A sentence when the runs end inside our optimiser's learning-rate warm-up (the official one is the same)."""
    warmup = runs.loc[runs["agent"] == OURS, "warmup"].dropna()
    updates = int(runs["updates"].max())
    if warmup.empty or updates >= warmup.max():
        return ""
    return (f"**Early training only.** A run makes about {updates:,} updates, inside the optimiser's "
            f"{int(warmup.max()):,}-update learning-rate warm-up: the study compares the two sides early in "
            "learning, not what they learn to converge to. A longer budget or a higher train ratio (the paper's "
            "512) compares more of it, at a proportional cost.\n")


def _diagnostics(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task, the training metrics both sides log: their late means (seeds' mean [min, max]) and the
    Welch CI of the difference, to show where two sides' learning parts ways when the scores do."""
    rows = []
    for task, group in runs.groupby("task"):
        late = {a: list(group.loc[group["agent"] == a, "late"]) for a in (OURS, OFFICIAL)}
        decoders = sorted({k[len(DECODER[0]):] for m in late[OURS] for k in m if k.startswith(DECODER[0])})
        pairs = {**DIAGNOSTICS, **{f"loss decoder {key}": (DECODER[0] + key, DECODER[1] + key) for key in decoders}}
        for name, (ours, official) in pairs.items():
            values = {a: np.array([m[k] for m in late[a] if k in m]) for a, k in ((OURS, ours), (OFFICIAL, official))}
            if not all(len(v) for v in values.values()):
                continue
            point, lower, upper = stats.welch_interval(values[OURS], values[OFFICIAL])
            rows.append({"task": task, "metric": name, **{
                side: f"{tables.cell(v.mean())} [{tables.cell(v.min())}, {tables.cell(v.max())}]"
                for side, v in (("ours", values[OURS]), ("official", values[OFFICIAL]))},
                "ours - official": f"{tables.cell(point)} [{tables.cell(lower)}, {tables.cell(upper)}]",
                "differs": "yes" if lower > 0 or upper < 0 else "no"})
    return pd.DataFrame(rows)


def _suite_page(runs: pd.DataFrame, left_out: list[str], suite: str, folder: Path, reps: int,
                rule: dict | None) -> Path:
    """Write `folder/<suite>.md` (the report's plots and tables in `folder/<suite>/`) from the suite's runs."""
    options = Options(reps=reps, against=OFFICIAL, include_flagged=True, tasks=sorted(runs["task"].unique()), rule=rule,
                      paper_formats=False)
    body = report.markdown(list(runs["path"]), folder / suite, suite, [OURS, OFFICIAL], options=options)
    jax = {a: runs.loc[runs["agent"] == a, "versions"].iloc[0].get("jax", "?") for a in (OURS, OFFICIAL)}
    commits = sorted({str(c)[:12] + (" (uncommitted changes)" if dirty else "")
                      for c, dirty in zip(runs["commit"], runs["dirty"])})
    header = [
        f"# DreamerV3 beside the official code: {suite}\n",
        f"`agent=dreamerv3` (this repository, jax {jax[OURS]} in .venv) and `agent=dreamerv3_official` (the "
        "official 2024 code, `dreamer==3.3.1`, in .venv-official with jax 0.4.33) ran through the same harness: "
        "the same envs, loop, seeds, budget and settings, float32 on the CPU. Equivalence on identical "
        "weights and data is tested in tests/official (docs/official_mapping.md); this page is about learning. "
        f"Regenerate with `{COMMAND}` (the runs, then `python -m results.fidelity RUNS --suite {suite}`).\n",
        f"Machine: {', '.join(sorted(set(runs['device'])))}. The runs of both sides shared it, two at a time. "
        f"Code: this repository at commit {', '.join(commits)}.\n",
        _verdict_paragraph(suite, _rule(folder, suite)),
        "## Settings (identical on both sides, checked from each run's config.yaml)\n",
        tables.markdown(_settings_table(runs)),
        ("Left out, not finished on both sides: " + ", ".join(left_out) + ".\n") if left_out else
        "Every task and seed of the study finished on both sides.\n",
        _warmup_caveat(runs),
        "## Training diagnostics\n",
        f"The training metrics both sides log, each run's mean over its log lines after {LATE:.0%} of its agent "
        "steps; per side the mean over seeds [lowest, highest seed]; the difference with its 95% Welch t CI "
        "('differs': the CI excludes 0). Where the scores part ways, these show whether the two sides' "
        "learning did.\n",
        tables.markdown(_diagnostics(runs)),
    ]
    page = folder / f"{suite}.md"
    body = (body.replace("](plots/", f"]({suite}/plots/").replace("(per run: tables/", f"(per run: {suite}/tables/")
            .replace("# Results report\n", "## The report\n", 1))
    page.write_text("\n".join(header) + "\n" + body)
    return page


def _verdict_paragraph(suite: str, rule: str) -> str:
    margin = equivalence.margin(suite)
    return (f"{VERDICT_START} of the final score ({rule}) is an equivalence test (docs/reference/reports.md): `reproduced` "
            f"only where the 90% Welch interval of (ours - official) lies inside ±{margin.task:.3g} ({margin.units}), "
            "`above` or `below` where it lies wholly beyond; otherwise `inconclusive`, with the seeds per side that "
            "would give a conclusive verdict with 80% power if the two sides agree.\n")


def _rule(folder: Path, suite: str) -> str:
    """The final-score rule the suite's report used, as its methods table states it."""
    return pd.read_csv(tables.path(folder / suite / "tables", f"{suite}_methods"))["rule"].iloc[0]


def _with_ci(table: pd.DataFrame, value: str, bounds: str) -> list[str]:
    """'value [lower, upper]' per row, from the columns `value`, `<bounds>_lower` and `<bounds>_upper`."""
    return [f"{v:.3g} [{lo:.3g}, {hi:.3g}]" for v, lo, hi in
            zip(table[value], table[f"{bounds}_lower"], table[f"{bounds}_upper"])]


def _index(out: Path) -> str:
    """The study's front page: every suite page under out's folder, with its verdicts per task."""
    folder, sections = out.with_suffix(""), []
    for page in sorted(folder.glob("*.md")):
        suite = page.stem
        verdicts = pd.read_csv(tables.path(folder / suite / "tables", f"{suite}_reproduction_{OFFICIAL} (new)"))
        summary = pd.DataFrame({"task": verdicts["task"], "runs per side": verdicts["new_runs"],
                                "ours": _with_ci(verdicts, "new_mean", "new"),
                                "official": _with_ci(verdicts, "published_mean", "published"),
                                "ours - official (90% CI)": _with_ci(verdicts, "diff", "diff"),
                                "verdict": verdicts["verdict"],
                                "hours per run (ours)": verdicts["hours_per_run"].round(2), "machine": verdicts["device"]})
        sections += [f"## [{suite}]({folder.name}/{page.name})\n", f"Final score: {_rule(folder, suite)}.\n",
                     tables.markdown(summary)]
    return "\n".join([
        "# DreamerV3: ours beside the official code, learning\n",
        "`agent=dreamerv3` and `agent=dreamerv3_official` (the official 2024 code) ran through the same harness "
        "with identical settings. One page per suite, each with its settings, machine, commit, report and curves; "
        f"below, the final scores (95% t CIs), their difference (90% Welch CI) and the verdicts of every page: "
        "equivalence tests at each suite's margin (docs/reference/reports.md), `inconclusive` where the seeds do not "
        f"show agreement. Regenerate with `{COMMAND}` (all suites; `make fidelity-proprio` or `make fidelity-vision` "
        "for one); `python -m results.fidelity --rejudge` judges the final scores the pages record again.\n", *sections])


def build(root: Path, out: Path, reps: int = 50_000, suites: list[str] | None = None, rule: str | None = None) -> Path:
    """Check the runs under `root`, write a page per suite (of `suites`, default all) beside `out`, in out's
    stem folder, and `out` itself as the index of every suite page there."""
    runs = _runs(root)
    if suites:
        runs = runs[runs["suite"].isin(suites)]
    check_identical(runs)
    pairs = {suite: finished_pairs(group) for suite, group in runs.groupby("suite")}
    if all(used.empty for used, _ in pairs.values()):
        left = [x for _, left_out in pairs.values() for x in left_out]
        raise ValueError(f"no task and seed under {root} is finished on both sides yet (left: {', '.join(left)})")
    folder = out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    for suite, (used, left_out) in pairs.items():  # aggregates over the study's tasks of each suite
        if not used.empty:
            _suite_page(used, left_out, suite, folder, reps, final.parse_rule(rule) if rule else None)
    out.write_text(_index(out))
    return out


def rejudge(out: Path, reps: int = 50_000) -> Path:
    """Judge again the final scores that every suite page beside `out` records in its runs table, by the
    current verdict rule and margins, and rewrite the pages' verdict sections, tables and the front page.
    For a change of the verdict rule: the study's runs need not be on this machine."""
    folder = out.with_suffix("")
    pages = sorted(folder.glob("*.md"))
    if not pages:
        raise ValueError(f"no suite pages in {folder} to judge again")
    for page in pages:
        suite, tables_folder = page.stem, folder / page.stem / "tables"
        runs = pd.read_csv(tables.path(tables_folder, f"{suite}_runs"))
        normaliser = pd.read_csv(tables.path(tables_folder, f"{suite}_methods"))["normaliser"].iloc[0]
        table = runs.assign(score=normalize.normalise(normaliser, runs["task"], runs["raw"]), normaliser=normaliser,
                            excluded=False)  # the pages include flagged runs (shortened budgets)
        old = pd.read_csv(tables.path(tables_folder, f"{suite}_reproduction_{OFFICIAL} (new)"))
        margin = equivalence.margin(suite)
        ours, official = f"{OURS} (new)", f"{OFFICIAL} (new)"
        verdicts = tables.reproduction(table, ours, official, suite, margin.task, reference_grows=True)
        verdicts = verdicts.merge(old[["task", "hours_per_run", "gpu_hours_per_run", "device"]], on="task", how="left")
        aggregate = tables.reproduction_aggregate(table, ours, official, reps, 0, margin.aggregate, reference_grows=True)
        suite_report = SuiteReport(suite, table, [ours, official], pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                                   reproduction=[verdicts], reproduction_aggregate=[aggregate] if len(aggregate) else [],
                                   margin=margin)
        for stale in tables_folder.glob(f"{suite}_reproduction_aggregate_*"):  # a single task has none now
            stale.unlink()
        sections = report.reproduction_sections(suite_report, tables_folder,
                                                Options(reps=reps, against=OFFICIAL, paper_formats=False))
        text = page.read_text()
        start, end = text.index("### Reproduction of"), text.index("### Per task (raw score")
        text = text[:start] + "\n".join(sections) + "\n" + text[end:]
        lines = text.split("\n")
        rule = _rule(folder, suite)
        text = "\n".join(_verdict_paragraph(suite, rule).rstrip("\n") if line.startswith(VERDICT_START) else line
                         for line in lines)
        page.write_text(text)
    out.write_text(_index(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m results.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="runs/fidelity", help="the study's runs (default runs/fidelity)")
    parser.add_argument("--suite", nargs="+", help="build the pages of these suites only (default: every suite of RUNS)")
    parser.add_argument("--out", default="docs/fidelity.md",
                        help="the front page (default docs/fidelity.md); suite pages go in its stem folder")
    parser.add_argument("--rule", help="final-score rule of the pages built (default each run's own: the training "
                        "episodes in the last 10%% of the budget), e.g. 'eval_after_training'")
    parser.add_argument("--reps", type=int, default=50_000, help="bootstrap replicates (default 50000)")
    parser.add_argument("--rejudge", action="store_true", help="judge again the final scores the existing pages "
                        "record (their runs tables) by the current verdict rule, without the runs")
    args = parser.parse_args(argv)
    if args.rejudge:
        print(f"wrote {rejudge(Path(args.out), args.reps)}")
        return 0
    print(f"wrote {build(Path(args.root), Path(args.out), args.reps, args.suite, args.rule)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
