"""Final-score rules and normalisers on published runs, and the honesty checks."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from results import reference
from results.checks import judge
from results.final import canonical_rule, final_scores, parse_rule
from results.load import load
from results.normalize import canonical, crafter_score, normalise
from results.report import main


def test_crafter_scores_of_the_scoreboard(published):
    """Crafter's human and random runs give the scoreboard's 50.5 +- 6.8 and 1.6 +- 0.0."""
    data = load([published / "crafter"])
    scores = final_scores(data)
    board = reference.table("crafter_scoreboard.csv").set_index("method")
    for method, row in (("human", "Human"), ("random", "Random")):
        per_seed = scores.loc[scores["method"] == method, "score"]
        assert len(per_seed) == 5
        assert per_seed.mean() == pytest.approx(board.loc[row, "score_pct"], abs=0.05)
        assert np.std(per_seed) == pytest.approx(board.loc[row, "score_std"], abs=0.05)


def test_crafter_score_formula():
    assert crafter_score(np.zeros(22)) == 0
    assert crafter_score(np.full(22, 100.0)) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="percentages"):
        crafter_score(np.full(22, 0.5) * 300)


def test_dreamerv3_atari100k_window(published):
    """Mean of the training episodes ending in [390k, 400k] frames, per seed, computed here from the raw file."""
    path = published / "dreamerv3_2024/atari100k-dreamerv3.json.gz"
    scores = final_scores(load([path])).set_index(["task", "seed"])
    assert set(scores["rule"]) == {"mean of train episodes ending in [390,000, 400,000] frames"}
    in_window = 0
    for run in json.load(gzip.open(path)):
        xs, ys = np.array(run["xs"]), np.array(run["ys"], dtype=float)
        window = (xs >= 390_000) & (xs <= 400_000)
        expected = ys[window].mean() if window.any() else ys[xs <= 400_000][-1]  # else: its last episode
        ours = scores.loc[(run["task"].removeprefix("atari_"), run["seed"])]
        assert ours["raw"] == pytest.approx(expected)
        assert bool(ours["fallback"]) == (not window.any())
        in_window += window.any()
    assert in_window == 122  # 8 of 130 runs have no episode ending in the window
    atari = reference.table("atari_scores.csv").set_index("task")
    pong = scores.loc[("pong", 1)]
    assert pong["score"] == pytest.approx((pong["raw"] + 20.7) / (14.6 + 20.7))
    assert atari.loc["jamesbond", "random"] == 29.0 and atari.loc["jamesbond", "human"] == 302.8


def test_window_without_fallback_gives_nan(published):
    data = load([published / "dreamerv3_2024/atari100k-dreamerv3.json.gz"])
    rule = {"rule": "train_window", "start": 390_000, "end": 400_000, "empty": "nan"}
    assert final_scores(data, rule)["score"].isna().sum() == 8


def test_dreamerv1_curves_and_last_point(published):
    data = load([published / "dreamerv1/dreamer.json.gz"])
    assert set(data.episodes["mode"]) == {"eval"} and data.episodes["task"].nunique() == 20
    scores = final_scores(data)
    assert len(scores) == 100 and scores["n_episodes"].eq(1).all()
    episodes = data.episodes[data.episodes["step"] <= 1_000_000]
    last = episodes.sort_values("step").groupby(["task", "seed"])["score"].last()
    assert np.allclose(scores.set_index(["task", "seed"])["raw"].loc[last.index], last)


def test_minecraft_diamond_rate(published):
    """DreamerV3 found a diamond in 19 of its 20 runs; IMPALA, Rainbow, R2D2 and PPO in none (the DreamerV3 paper, arXiv:2301.04104)."""
    for method, rate in (("dreamerv3", 0.95), ("impala", 0.0), ("rainbow", 0.0), ("r2d2", 0.0), ("ppo_fixhp", 0.0)):
        scores = final_scores(load([published / f"dreamerv3_2024/minecraft_diamond-{method}.json.gz"]))
        assert scores["score"].mean() == pytest.approx(rate), method


def test_last_fraction_and_record_normalisers(published):
    data = load([published / "dreamerv3_2024/atari57-dreamerv3.json.gz"])
    human = final_scores(data, parse_rule("last_fraction:fraction=0.1"))
    record = final_scores(data, parse_rule("last_fraction:fraction=0.1"), "atari_record")
    clipped = final_scores(data, parse_rule("last_fraction:fraction=0.1"), "atari_record_clipped")
    assert np.allclose(human["raw"], record["raw"], equal_nan=True)
    assert (record["score"] < human["score"]).sum() > 0.9 * len(human)
    assert clipped["score"].max() <= 1.0
    assert record.loc[record["task"] == "surround", "score"].isna().all()  # no world record known


def test_rule_and_normaliser_errors():
    with pytest.raises(ValueError, match="valid rules: train_window"):
        canonical_rule("best_episode")
    with pytest.raises(ValueError, match="needs start and end"):
        canonical_rule({"rule": "train_window", "start": 1})
    with pytest.raises(ValueError, match="takes"):
        canonical_rule({"rule": "last_fraction", "fraction": 0.1, "window": 3})
    with pytest.raises(ValueError, match="valid normalisers: raw"):
        canonical("z_score")
    assert parse_rule("train_window:start=390000,end=400000")["end"] == 400000


def test_flags_exclude_unfinished_overridden_and_short_runs(tmp_path, make_run, atari26):
    def episodes(score):
        return [{"step": 395000, "episode/score": score, "mode": "train", "final": False}]
    for seed in range(3):
        make_run(tmp_path, atari26(), "dreamerv3", "pong", seed, episodes(10.0 + seed))
        make_run(tmp_path, atari26(), "dreamerv3", "boxing", seed, episodes(50.0),
                 state="running" if seed == 2 else "done", step=200_000 if seed == 2 else None)
    make_run(tmp_path, atari26(budget=50_000), "dreamerv3", "alien", 0, episodes(500.0),
             overrides={"protocol.budget": {"paper": 100000, "run": 50000}})
    data = load([tmp_path])
    table = judge(final_scores(data), data.runs, "atari26").set_index(["task", "seed"])
    assert not table.loc[("pong", 0), "excluded"]
    assert "unfinished (state running)" in table.loc[("boxing", 2), "flags"]
    assert "200,000 of 400,000 frames" in table.loc[("boxing", 2), "flags"]
    assert table.loc[("boxing", 0), "flags"] == "missing seeds (2 of 3 runs)"
    assert table.loc[("alien", 0), "flags"] == "protocol overridden: protocol.budget 50000 (paper 100000)"
    assert table["excluded"].sum() == 4
    included = judge(final_scores(data), data.runs, "atari26", include_flagged=True)
    assert not included["excluded"].any()


def test_crafter_and_minecraft_run_directories(tmp_path, make_run):
    """Suite extras from the harness (`log/achievement_*`, `log/milestone_*`) feed the Crafter score and
    the diamond rate."""
    achievements = list(reference.table("crafter_achievements.csv")["achievement"])
    crafter = {"name": "crafter", "protocol": {"budget": 1_000_000, "action_repeat": 1, "normaliser": "crafter",
                                               "final_score": {"rule": "train_window", "start": 0, "end": 1_000_000}}}
    episodes = []
    for i in range(4):  # collect_wood in every episode, place_table in half of them
        extras = {f"log/achievement_{a}": 0 for a in achievements}
        extras.update({"log/achievement_collect_wood": 2, "log/achievement_place_table": i % 2})
        episodes.append({"step": 1000 * (i + 1), "episode/score": 1.0, "mode": "train", "final": False, **extras})
    make_run(tmp_path, crafter, "dreamerv3", "crafter_reward", 0, episodes)
    minecraft = {"name": "minecraft", "protocol": {"budget": 100_000_000, "action_repeat": 1,
                                                   "normaliser": "minecraft_diamond",
                                                   "final_score": {"rule": "train_window", "start": 0,
                                                                   "end": 100_000_000}}}
    for seed, found in ((0, 1), (1, 0)):
        make_run(tmp_path, minecraft, "dreamerv3", "minecraft_diamond", seed,
                 [{"step": 5000, "episode/score": 11.2, "mode": "train", "final": False,
                   "log/milestone_diamond": found}])
    scores = final_scores(load([tmp_path])).set_index(["suite", "seed"])
    expected = np.exp((np.log(101) + np.log(51)) / 22) - 1
    assert scores.loc[("crafter", 0), "score"] == pytest.approx(expected)
    assert scores.loc[("minecraft", 0), "score"] == 1.0 and scores.loc[("minecraft", 1), "score"] == 0.0


def test_a_different_action_repeat_is_flagged_without_recorded_overrides(tmp_path, make_run, atari26):
    make_run(tmp_path, atari26(budget=200_000, action_repeat=2), "dreamerv3", "pong", 0,
             [{"step": 395000, "episode/score": 3.0, "mode": "train", "final": False}])
    data = load([tmp_path])
    flags = judge(final_scores(data), data.runs, "atari26")["flags"].item()
    assert flags == "action repeat 2, paper 4"


def test_classic_minmax_puts_the_random_policy_at_0_and_the_largest_return_at_1():
    tasks = pd.Series(["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
    assert normalise("classic_minmax", tasks, [22.2, -499.1, -1230.7]) == pytest.approx([0, 0, 0])
    assert normalise("classic_minmax", tasks, [500, 0, 0]) == pytest.approx([1, 1, 1])
    assert normalise("classic_minmax", tasks, [261.1, -100, -200]) == pytest.approx([0.5, 0.7996, 0.8375], abs=1e-4)
    assert reference.suite_defaults("classic")["normaliser"] == "classic_minmax"


def test_classic_report_aggregates_normalised_returns(tmp_path, make_run):
    """Runs of the classic suite (as the harness writes them) aggregate min-max normalised returns."""
    suite = {"name": "classic", "tasks": [], "protocol": {"budget": 100000, "action_repeat": 1,
             "final_score": {"rule": "eval_after_training"}, "normaliser": "classic_minmax"}}
    returns = {"CartPole-v1": 500.0, "Acrobot-v1": -499.1, "Pendulum-v1": -615.35}  # 1, 0 and 0.5
    for task, score in returns.items():
        for seed in range(2):
            make_run(tmp_path / "runs", suite, "ppo", task, seed,
                     [{"step": 100000, "episode/score": score, "mode": "eval", "final": True}])
    out = tmp_path / "report"
    assert main([str(tmp_path / "runs"), "--suite", "classic", "--out", str(out), "--no-plots", "--reps", "200"]) == 0
    aggregates = pd.read_csv(out / "tables/classic_aggregates.csv").set_index("method")
    assert aggregates.loc["ppo (new)", ["median", "mean"]].tolist() == pytest.approx([0.5, 0.5], abs=1e-3)
    assert "### Aggregates (classic_minmax scores" in (out / "report.md").read_text()
