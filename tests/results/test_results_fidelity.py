"""The learning study's page (results.fidelity) and `results.report --against`: verdicts of one agent against
another agent's runs, and the refusal of side-by-side runs whose settings differ.

Run directories are written in the harness's format with chosen final scores; the real study's runs are
made by `make fidelity` (tests/official/test_fidelity_runs.py runs a tiny one through the harness).
"""

import json
import shutil

import pandas as pd
import pytest
import yaml
from scipy import stats as scipy_stats

from results import fidelity, report

STUDY = {"budget": 30000, "action_repeat": 2, "episode_cap": 1000, "eval_every": 0, "eval_episodes": 0,
         "final_eval_episodes": 10, "final_score": {"rule": "last_fraction", "fraction": 0.1,
                                                    "second": "eval_after_training"}, "normaliser": "raw"}
AGENT = {"envs": 4, "size": "1m", "train_ratio": 32, "batch_size": 16, "batch_length": 64, "compute_dtype": "auto",
         "replay": {"capacity": 5000000, "online": True}}
# final scores per (task, agent): cartpole alike on both sides, reacher far apart
FINALS = {("cartpole_balance", "dreamerv3"): [800, 830, 815], ("cartpole_balance", "dreamerv3_official"): [805, 825, 790],
          ("reacher_easy", "dreamerv3"): [900, 910, 905], ("reacher_easy", "dreamerv3_official"): [300, 320, 310]}


def train_log(agent, task, seed):
    """Metric lines as each side logs them, 905 updates in 30000 agent steps: the dynamics loss 1 higher on our
    side for reacher (seeds 0.1 apart), alike for cartpole; one decoder loss, equal everywhere."""
    ours = agent == "dreamerv3"
    dyn = 1.0 + 0.1 * (seed - 1) + (1.0 if ours and task == "reacher_easy" else 0.0)
    names = ("train/loss/rec_position", "train/policy_entropy") if ours else ("train/loss/position", "train/ent/action")
    return [{"step": 2 * step, "agent_step": step, "train/updates": 905 * step / 30000, "train/loss/dyn": dyn,
             names[0]: 3.0, names[1]: 0.5} for step in range(3000, 30001, 3000)]


def side_by_side(root, make_run, change=None):
    """Both sides' runs of the study, 3 seeds; `change(agent, task, seed, config)` may alter a run's config."""
    suite = {"name": "dmc_proprio", "tasks": [], "protocol": STUDY, "env": {"proprio": True, "image": False}}
    for (task, agent), scores in FINALS.items():
        for seed, final in enumerate(scores):
            episodes = [{"step": step, "episode/score": final * step / 60000, "mode": "train"}
                        for step in range(1000, 54000, 1000)]
            episodes += [{"step": step, "episode/score": final, "mode": "train"} for step in (56000, 58000, 60000)]
            run = make_run(root, suite, agent, task, seed, episodes,
                           overrides={"protocol.budget": {"paper": 250000, "run": 30000}})
            (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in train_log(agent, task, seed)))
            config = yaml.safe_load((run / "config.yaml").read_text())
            ours = {"train_after": 1024, "optimizer": {"warmup": 1000}} if agent == "dreamerv3" else {}
            config["agent"].update(AGENT, **ours)
            config["run"] = {"parallel_envs": "auto"}
            if change:
                change(agent, task, seed, config)
            (run / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def test_page_gives_verdicts_against_the_official_runs(tmp_path, make_run):
    root = side_by_side(tmp_path / "runs", make_run)
    index = fidelity.build(root, tmp_path / "docs" / "fidelity.md", reps=2000).read_text()
    page = (tmp_path / "docs" / "fidelity" / "dmc_proprio.md").read_text()
    verdicts = pd.read_csv(tmp_path / "docs" / "fidelity" / "dmc_proprio" / "tables" /
                           "dmc_proprio_reproduction_dreamerv3_official-new.csv").set_index("task")
    # the suite's margin is 50 (results/reference/margins.yaml); cartpole's 90% interval is about [-20, 37]
    assert verdicts.loc["cartpole_balance", "verdict"] == "reproduced (within ±50)"
    assert verdicts.loc["reacher_easy", "verdict"] == "above (beyond +50)"
    welch = scipy_stats.ttest_ind(FINALS[("cartpole_balance", "dreamerv3")], FINALS[("cartpole_balance", "dreamerv3_official")],
                                  equal_var=False).confidence_interval(0.90)
    assert verdicts.loc["cartpole_balance", ["diff_lower", "diff_upper"]].tolist() == pytest.approx([welch.low, welch.high])
    assert verdicts.loc["reacher_easy", "new_mean"] == pytest.approx(905)
    assert verdicts.loc["reacher_easy", "published_mean"] == pytest.approx(310)
    assert verdicts.loc["cartpole_balance", "ratio"] == pytest.approx(815 / 806.6667, rel=1e-4)
    assert "| dmc_proprio | cartpole_balance | 3 | 30000 | 2 | 1m | 32 | 4 | 16 x 64 | 5000000 | auto | 905 | 905 |" in page
    # training diagnostics: both sides' names of one quantity side by side, the difference where there is one
    assert "| reacher_easy | loss dyn | 2 [1.9, 2.1] | 1 [0.9, 1.1] | 1 [" in page
    assert "| cartpole_balance | loss dyn | 1 [0.9, 1.1] | 1 [0.9, 1.1] | 0 [" in page
    assert "| reacher_easy | loss decoder position | 3 [3, 3] | 3 [3, 3] | 0 [0, 0] | no |" in page
    assert "| reacher_easy | entropy policy | 0.5 [0.5, 0.5] | 0.5 [0.5, 0.5] | 0 [0, 0] | no |" in page
    reacher_dyn = next(line for line in page.splitlines() if line.startswith("| reacher_easy | loss dyn |"))
    cartpole_dyn = next(line for line in page.splitlines() if line.startswith("| cartpole_balance | loss dyn |"))
    assert reacher_dyn.endswith("| yes |") and cartpole_dyn.endswith("| no |")
    assert "reference mean" in page and "published mean" not in page
    assert "A run makes about 905 updates, inside the optimiser's 1,000-update learning-rate warm-up" in page
    assert "Code: this repository at commit not recorded." in page  # the test's runs have no git commit
    assert "](dmc_proprio/plots/dmc_proprio_curves.png)" in page
    # docs get what the page shows: its PNG plots and its tables' CSVs, no PDF, TeX or report.md
    written = tmp_path / "docs" / "fidelity" / "dmc_proprio"
    shown = {link.split(")")[0] for link in page.split("](dmc_proprio/")[1:]}
    assert shown == {f"plots/dmc_proprio_{name}.png" for name in (
        "curves", "aggregates", "profiles", "improvement", "sample_efficiency")}
    assert {f.relative_to(written).as_posix() for f in written.rglob("*.png")} == shown
    assert {f.suffix for f in written.rglob("*") if f.is_file()} == {".png", ".csv"}
    # the front page: a link to the suite page and both sides' final scores with the verdict of every task
    assert "## [dmc_proprio](fidelity/dmc_proprio.md)" in index
    assert "| reacher_easy | 3 | 905 [" in index and "| above (beyond +50) |" in index
    assert "| cartpole_balance | 3 | 815 [" in index and "| reproduced (within ±50) |" in index
    assert "lies inside ±50 (return (0-1000))" in page


def test_one_suite_is_rebuilt_and_the_front_page_keeps_the_others(tmp_path, make_run):
    root = side_by_side(tmp_path / "runs", make_run)
    out = tmp_path / "docs" / "fidelity.md"
    fidelity.build(root, out, reps=500)
    folder = tmp_path / "docs" / "fidelity"
    vision = folder / "dmc_vision.md"  # a page of another suite, built earlier from runs no longer here
    vision.write_text("an earlier study")
    (folder / "dmc_vision" / "tables").mkdir(parents=True)
    for table in ("methods", "reproduction_dreamerv3_official-new"):  # what the front page reads
        shutil.copy(folder / "dmc_proprio" / "tables" / f"dmc_proprio_{table}.csv",
                    folder / "dmc_vision" / "tables" / f"dmc_vision_{table}.csv")
    with pytest.raises(ValueError, match="no runs of dreamerv3 or dreamerv3_official found"):
        fidelity.build(root, out, reps=500, suites=["dmc_vision"])  # no runs of that suite under root
    index = fidelity.build(root, out, reps=500, suites=["dmc_proprio"]).read_text()
    assert vision.read_text() == "an earlier study"
    assert index.index("## [dmc_proprio](fidelity/dmc_proprio.md)") < index.index("## [dmc_vision](fidelity/dmc_vision.md)")


@pytest.mark.parametrize("change, message", [
    (lambda agent, task, seed, c: agent == "dreamerv3_official" and seed == 1 and c["agent"].update(train_ratio=64),
     "reacher_easy: train_ratio of dreamerv3_official seed 1 differ from dreamerv3 seed 0"),
    (lambda agent, task, seed, c: agent == "dreamerv3" and c["suite"]["protocol"].update(action_repeat=1),
     "cartpole_balance: protocol of dreamerv3_official seed 0 differ from dreamerv3 seed 0"),
    (lambda agent, task, seed, c: agent == "dreamerv3" and c["agent"].update(train_after=5000),
     "train_after 5000"),
    (lambda agent, task, seed, c: agent == "dreamerv3" and task == "reacher_easy" and seed == 2 and c.update(seed=7),
     "seeds [0, 1, 7] of dreamerv3 but [0, 1, 2] of dreamerv3_official"),
])
def test_differing_settings_are_refused(tmp_path, make_run, change, message):
    root = side_by_side(tmp_path / "runs", make_run, change)
    with pytest.raises(ValueError, match="did not run identical settings") as error:
        fidelity.build(root, tmp_path / "fidelity.md", reps=200)
    assert message in str(error.value)
    assert not (tmp_path / "fidelity.md").exists()


def test_report_against_an_unknown_method_lists_the_loaded_ones(tmp_path, make_run):
    root = side_by_side(tmp_path / "runs", make_run)
    with pytest.raises(ValueError, match="--against ppo: no runs of it in suite dmc_proprio; loaded methods: "
                                         "dreamerv3, dreamerv3_official"):
        report.main([str(root), "--against", "ppo", "--include-flagged", "--reps", "200", "--no-plots",
                     "--out", str(tmp_path / "report")])


def test_report_against_on_the_command_line(tmp_path, make_run):
    root = side_by_side(tmp_path / "runs", make_run)
    report.main([str(root), "--against", "dreamerv3_official", "--include-flagged", "--reps", "500", "--no-plots",
                 "--tasks", "cartpole_balance", "reacher_easy", "--suite", "dmc_proprio", "--out", str(tmp_path / "r")])
    text = (tmp_path / "r" / "report.md").read_text()
    assert "### Reproduction of dreamerv3_official (new) by dreamerv3 (new): per task" in text
    aggregate = pd.read_csv(tmp_path / "r" / "tables" / "dmc_proprio_reproduction_aggregate_dreamerv3_official-new.csv")
    assert set(aggregate["metric"]) >= {"iqm", "mean"}
    assert json.loads(json.dumps(list(aggregate["tasks"]))) == [2] * len(aggregate)


def test_a_seed_unfinished_on_either_side_is_left_out_on_both(tmp_path, make_run):
    root = side_by_side(tmp_path / "runs", make_run)
    status = root / "dmc_proprio" / "dreamerv3_official" / "reacher_easy" / "seed2" / "status.json"
    status.write_text(json.dumps({**json.loads(status.read_text()), "state": "running", "step": 30000}))
    fidelity.build(root, tmp_path / "fidelity.md", reps=500)
    page = (tmp_path / "fidelity" / "dmc_proprio.md").read_text()
    assert "Left out, not finished on both sides: reacher_easy seed 2." in page
    verdicts = pd.read_csv(tmp_path / "fidelity" / "dmc_proprio" / "tables" /
                           "dmc_proprio_reproduction_dreamerv3_official-new.csv").set_index("task")
    assert verdicts.loc["reacher_easy", ["new_runs", "published_runs"]].tolist() == [2, 2]
    assert verdicts.loc["reacher_easy", "new_mean"] == pytest.approx(905)
    assert verdicts.loc["cartpole_balance", ["new_runs", "published_runs"]].tolist() == [3, 3]
    for stopped in (root / "dmc_proprio" / "dreamerv3_official").glob("*/seed*/status.json"):
        stopped.write_text(json.dumps({"state": "stopped"}))
    with pytest.raises(ValueError, match="no task and seed under .* is finished on both sides yet"):
        fidelity.build(root, tmp_path / "again.md", reps=200)


def test_a_final_score_rule_given_for_the_pages(tmp_path, make_run):
    """`--rule`: the study's verdicts by another final-score rule (the vision study's evaluation episodes),
    named on the suite page and on the front page."""
    root = side_by_side(tmp_path / "runs", make_run)
    index = fidelity.build(root, tmp_path / "fidelity.md", reps=500, rule="last_fraction:fraction=0.5").read_text()
    page = (tmp_path / "fidelity" / "dmc_proprio.md").read_text()
    assert "final score (mean of train episodes in the last 50% of the budget) is an equivalence test" in page
    assert "Final score: mean of train episodes in the last 50% of the budget." in index
    verdicts = pd.read_csv(tmp_path / "fidelity" / "dmc_proprio" / "tables" /
                           "dmc_proprio_reproduction_dreamerv3_official-new.csv").set_index("task")
    assert verdicts.loc["reacher_easy", "new_mean"] < 905  # the ramp of the first half now counts


def test_rejudge_rebuilds_the_verdicts_from_the_recorded_final_scores(tmp_path, make_run):
    """`--rejudge` reads the pages' runs tables, not the runs: a page judged by an outdated rule (here its verdict
    sections and tables overwritten) gets the same verdicts as a fresh build, with the runs gone."""
    root = side_by_side(tmp_path / "runs", make_run)
    out = tmp_path / "docs" / "fidelity.md"
    fidelity.build(root, out, reps=500)
    page = tmp_path / "docs" / "fidelity" / "dmc_proprio.md"
    table = tmp_path / "docs" / "fidelity" / "dmc_proprio" / "tables" / "dmc_proprio_reproduction_dreamerv3_official-new.csv"
    built_page, built = page.read_text(), pd.read_csv(table)
    shutil.rmtree(root)
    page.write_text(built_page.replace("reproduced (within ±50)", "reproduced").replace(
        "is an equivalence test", "contains 0"))
    pd.read_csv(table).assign(verdict="reproduced").to_csv(table, index=False)
    out.write_text("outdated")
    assert fidelity.main(["--rejudge", "--out", str(out), "--reps", "500"]) == 0
    assert page.read_text() == built_page
    pd.testing.assert_frame_equal(pd.read_csv(table), built)
    assert not list(table.parent.glob("*.tex"))  # the docs keep the CSVs only
    assert "| cartpole_balance | 3 | 815 [" in out.read_text() and "| reproduced (within ±50) |" in out.read_text()
    with pytest.raises(ValueError, match="no suite pages in"):
        fidelity.rejudge(tmp_path / "elsewhere.md")


def test_the_sides_compare_what_their_replays_sample_not_how_ours_stores_it():
    config = {"suite": {"protocol": {"budget": 10}}, "run": {"parallel_envs": "auto"},
              "agent": {"envs": 4, "replay": {"capacity": 1000, "online": True, "chunk": 1024, "store": "memory"}}}
    official = {**config, "agent": {"envs": 4, "replay": {"capacity": 1000, "online": True}}}
    assert fidelity._settings(config) == fidelity._settings(official)
    smaller = {**config, "agent": {"envs": 4, "replay": {"capacity": 999, "online": True}}}
    assert fidelity._settings(smaller) != fidelity._settings(official)
