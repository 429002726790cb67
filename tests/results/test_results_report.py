"""The report end to end: a harness run beside published runs, verdicts, outputs, errors."""

import json
import shutil

import pandas as pd
import pytest

from results import reference
from results.names import canonical_task, slug
from results.report import main

REPS = ["--reps", "500"]


def test_harness_run_shows_up_beside_published_runs(tmp_path, published, run_cli):
    root, out = tmp_path / "runs", tmp_path / "report"
    run_cli("harness.run", "suite=atari26", "task=pong", "agent=random", "steps=1000", "seeds=1",
            f"root={root}", "suite.protocol.final_eval_episodes=1", cwd=tmp_path)
    run_cli("results.report", str(root), "--suite", "atari100k", "--compare", "published",
            "--out", str(out), *REPS, cwd=tmp_path)
    report = (out / "report.md").read_text()
    per_task_section = report.split("### Per task (raw score")[1]
    header = next(line for line in per_task_section.splitlines() if line.startswith("| task |"))
    pong = next(line for line in per_task_section.splitlines() if line.startswith("| pong |"))
    assert header.startswith("| task | random (new) | curl |")  # our run first, the published runs beside it
    assert pong.startswith("| pong | -20 [-20, -20] (1, flagged) |")
    per_task = pd.read_csv(out / "tables/atari26_per_task.csv")
    assert {"random (new)", "iris", "dreamerv3", "spr"} <= set(per_task.loc[per_task["task"] == "pong", "method"])
    runs = pd.read_csv(out / "tables/atari26_runs.csv")
    assert runs["flags"].str.contains("protocol overridden: protocol.budget 1000 \\(paper 100000\\)").all()
    assert "random (new) is left out of the aggregates" in report
    compute = pd.read_csv(out / "tables/atari26_compute.csv")
    assert len(compute) == 1 and compute["device"].str.startswith("cpu").all() and compute["wall_hours"].gt(0).all()
    for name in ("curves", "aggregates", "profiles", "improvement", "sample_efficiency"):
        assert (out / f"plots/atari26_{name}.png").stat().st_size > 10_000
        assert (out / f"plots/atari26_{name}.pdf").stat().st_size > 5_000
    assert (out / "tables/atari26_aggregates.tex").read_text().startswith("\\begin{tabular}")


def iris_runs(published, tmp_path, make_run, atari26, change=None):
    """Run directories of an agent named 'iris' whose evaluation after training scores IRIS's published runs."""
    change = change or {}
    per_game = json.loads((published / "atari100k_runs/IRIS.json").read_text())
    for game, scores in per_game.items():
        for seed, score in enumerate(scores):
            score = change.get(game, lambda s: s)(score)
            make_run(tmp_path / "runs", atari26(final_score={"rule": "eval_after_training"}), "iris", game,
                     seed, [{"step": 400000, "episode/score": score, "mode": "eval", "final": True}])
    return tmp_path / "runs"


def test_verdicts_against_per_run_published_data(tmp_path, published, make_run, atari26):
    runs = iris_runs(published, tmp_path, make_run, atari26,
                     change={"Boxing": lambda s: s + 100, "Breakout": lambda s: 0.0})
    out = tmp_path / "report"
    assert main([str(runs), "--suite", "atari26", "--compare", "published",
                 "--methods", "iris", "--out", str(out), "--no-plots", *REPS]) == 0
    verdicts = pd.read_csv(out / "tables/atari26_reproduction_iris.csv").set_index("task")
    assert verdicts.loc["boxing", "verdict"] == "above (beyond +0.2)"
    assert verdicts.loc["breakout", "verdict"] == "below (beyond -0.2)"
    # The same scores as the published runs: reproduced where IRIS's own 5 runs are tight enough for the margin
    # of 0.2 human-normalised, inconclusive where their spread alone fills it (no number of runs of ours helps).
    same = verdicts.drop(index=["boxing", "breakout"])
    inside = (same["diff_lower"] > -0.2) & (same["diff_upper"] < 0.2)
    assert ((same["outcome"] == "reproduced") == inside).all() and len(same) == 24
    assert inside.sum() == 16 and (same.loc[~inside, "verdict"].str.startswith(
        "inconclusive (out of reach: the reference runs allow no margin below ±")).all()
    assert (verdicts["diff"] == 0).sum() == 24 and (verdicts["margin"] == 0.2).all()
    assert same["ratio"].to_numpy() == pytest.approx(1.0) and (same["published_runs"] == 5).all()
    aggregate = pd.read_csv(out / "tables/atari26_reproduction_aggregate_iris.csv").set_index("metric")
    assert aggregate.loc["iqm", "tasks"] == 26 and aggregate.loc["iqm", "published_value"] == pytest.approx(0.501, abs=5e-4)
    report = (out / "report.md").read_text()
    assert "| iris (new) | new | 130 | 130 | 26 | mean of the evaluation episodes after training | atari_human |" in report
    assert "dreamerv3" not in report  # --methods keeps iris and its published counterpart only
    assert "the 90% expanded percentile interval of rliable's stratified bootstrap" in report  # aggregates
    assert "the 90% Welch t interval of (new mean - published mean)" in report  # per task
    assert "Inside ±δ with δ = 0.15: reproduced" in report and "Inside ±δ with δ = 0.2: reproduced" in report
    # The two changed games move the mean by +100 / (human - random) of Boxing and -83.66 (IRIS's mean) / that of
    # Breakout, over 26 games: 0.21, beyond the margin of 0.15 but with an interval reaching inside it.
    games = reference.table("atari_scores.csv").set_index("task")
    gap = games["human"] - games["random"]
    assert aggregate.loc["mean", "diff"] == pytest.approx((100 / gap["boxing"] - 83.66 / gap["breakout"]) / 26, abs=1e-6)
    assert aggregate.loc["mean", "diff_lower"] < 0.15 < aggregate.loc["mean", "diff_upper"]
    assert set(aggregate["outcome"]) == {"inconclusive"} and (aggregate["margin"] == 0.15).all()


def test_verdicts_against_the_paper_table(tmp_path, make_run, atari26):
    """STORM has no per-run data: its printed per-game means (DIAMOND's table) stand in as constants. One run
    per game shows no spread to judge a difference by; two runs close around the printed mean reproduce it;
    two runs as close together half a human-random gap above it are above it."""
    printed = reference.table("atari100k_published.csv").query("method == 'storm'")
    games = reference.table("atari_scores.csv").set_index("task")
    out = tmp_path / "report"
    # per seed: (shift, offset) from the printed mean in human-random gaps
    for runs, expected in (({0: (0, 0)}, "n/a (fewer than 2 runs)"), ({0: (0, -0.001), 1: (0, 0.001)}, "reproduced (within ±0.2)"),
                           ({0: (0.5, -0.001), 1: (0.5, 0.001)}, "above (beyond +0.2)")):
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)
        for task, score in zip(printed["task"], printed["score"]):
            gap = games.loc[task, "human"] - games.loc[task, "random"]
            for seed, (shift, offset) in runs.items():
                final = score + (shift + offset) * gap
                make_run(tmp_path / "runs", atari26(final_score={"rule": "eval_after_training"}), "storm", task,
                         seed, [{"step": 400000, "episode/score": final, "mode": "eval", "final": True}])
        assert main([str(tmp_path / "runs"), "--suite", "atari26", "--compare", "published", "--out", str(out),
                     "--no-plots", *REPS]) == 0
        verdicts = pd.read_csv(out / "tables/atari26_reproduction_storm.csv")
        assert (verdicts["published_from"] == "paper table").all() and len(verdicts) == 26
        assert (verdicts["verdict"] == expected).all(), verdicts["verdict"].value_counts()
    assert "no per-run published data of 'storm'" in (out / "report.md").read_text()


def test_shipped_data_without_flag_and_a_published_folder_that_replaces_a_file(tmp_path, published, make_run,
                                                                             atari26):
    runs = iris_runs(published, tmp_path, make_run, atari26)
    out = tmp_path / "report"
    assert main([str(runs), "--suite", "atari26", "--compare", "published", "--methods", "iris", "--out", str(out),
                 "--no-plots", *REPS]) == 0
    verdicts = pd.read_csv(out / "tables/atari26_reproduction_iris.csv")
    assert (verdicts["published_from"] == "per-run data").all()
    assert (verdicts["outcome"] == "reproduced").sum() == 16 and set(verdicts["outcome"]) == {"reproduced", "inconclusive"}
    # A folder with its own IRIS.json (every game's runs shifted up by half a human-random gap + 10 times their
    # range) replaces the shipped file.
    mine = tmp_path / "mine" / "atari100k_runs"
    mine.mkdir(parents=True)
    shipped = json.loads((published / "atari100k_runs/IRIS.json").read_text())
    games = reference.table("atari_scores.csv").set_index("task")
    gap = {g: games.loc[canonical_task("atari26", g), "human"] - games.loc[canonical_task("atari26", g), "random"]
           for g in shipped}
    raised = {g: [x + 0.5 * gap[g] + 10 * (max(v) - min(v)) for x in v] for g, v in shipped.items()}
    (mine / "IRIS.json").write_text(json.dumps(raised))
    assert main([str(runs), "--suite", "atari26", "--compare", "published", "--published", str(tmp_path / "mine"),
                 "--methods", "iris", "--out", str(out), "--no-plots", *REPS]) == 0
    verdicts = pd.read_csv(out / "tables/atari26_reproduction_iris.csv")
    assert (verdicts["outcome"] == "below").all() and (verdicts["published_runs"] == 5).all()


def test_tasks_restrict_the_report_and_aggregates_name_the_subset(tmp_path, published, make_run, atari26):
    runs = iris_runs(published, tmp_path, make_run, atari26)
    out = tmp_path / "report"
    assert main([str(runs), "--suite", "atari26", "--tasks", "Pong", "breakout", "MsPacman", "--out", str(out),
                 "--no-plots", *REPS]) == 0
    aggregates = pd.read_csv(out / "tables/atari26_aggregates.csv")
    assert aggregates["tasks"].tolist() == [3]
    assert set(pd.read_csv(out / "tables/atari26_per_task.csv")["task"]) == {"pong", "breakout", "ms_pacman"}
    assert "over the 3 tasks given with --tasks (pong, breakout, ms_pacman)" in (out / "report.md").read_text()
    with pytest.raises(ValueError, match="loaded tasks: .*pong"):
        main([str(runs), "--suite", "atari26", "--tasks", "defender", "--out", str(out), "--no-plots", *REPS])


def test_errors_name_the_valid_choices(tmp_path, published):
    with pytest.raises(ValueError, match="valid suites"):
        main([str(published / "atari100k_runs/IRIS.json"), "--suite", "atari100m", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="loaded methods: iris"):
        main([str(published / "atari100k_runs/IRIS.json"), "--methods", "iris2", "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError):
        main([str(tmp_path / "nothing"), "--out", str(tmp_path)])


def test_pending_runs_are_listed_not_averaged(tmp_path, make_run, atari26):
    make_run(tmp_path / "runs", atari26(), "dreamerv3", "pong", 0, [], state="pending", step=0)
    (tmp_path / "runs/atari26/dreamerv3/pong/seed1").mkdir()
    (tmp_path / "runs/atari26/dreamerv3/pong/seed1/status.json").write_text('{"state": "pending"}')
    out = tmp_path / "report"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--no-plots", *REPS]) == 0
    runs = pd.read_csv(out / "tables/atari26_runs.csv")
    assert runs["flags"].item().startswith("unfinished (state pending); unfinished budget (0 of 400,000 frames)")
    assert "seed1: a run directory without config.yaml" in (out / "report.md").read_text()


@pytest.mark.parametrize("label, expected", [
    ("dreamerv3", "dreamerv3"), ("dreamerv3 (new)", "dreamerv3-new"),
    ("atari26_reproduction_dreamerv3_official (new)", "atari26_reproduction_dreamerv3_official-new"),
    ("ppo [discrete.lr=0.001] (new)", "ppo-discrete.lr=0.001-new"),
    ("dreamerv3 [size=12m, train_ratio=512] (logdir)", "dreamerv3-size=12m-train_ratio=512-logdir"),
    (" DreamerV3 (new) ", "dreamerv3-new"),
])
def test_file_names_are_slugs_of_the_labels(label, expected):
    assert slug(label) == expected
    assert slug(label) == slug(slug(label))  # a name written once is read back by the same function
