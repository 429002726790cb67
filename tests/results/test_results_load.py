"""Loaders: every published file, run directories, DreamerV3 log directories, task-name variants."""

import gzip
import json

import numpy as np
import pytest

from results import reference
from results.load import load, read_json
from results.names import canonical_suite, canonical_task

# file -> (suite, method, runs per task, tasks) as the files hold them (published/SOURCES.md)
EXPECTED = {
    "atari100k_runs/IRIS.json": ("atari26", "iris", 5, 26),
    "atari100k_runs/SPR.json": ("atari26", "spr", 100, 26),
    "atari100k_runs/CURL_10_evals.json.gz": ("atari26", "curl", 100, 26),
    "atari100k_runs/MuZero.json": ("atari26", "muzero", 1, 26),
    "dreamerv3_2024/atari100k-dreamerv3.json.gz": ("atari26", "dreamerv3", 5, 26),
    "dreamerv3_2024/dmc_proprio-dreamerv3.json.gz": ("dmc_proprio", "dreamerv3", 5, 18),
    "dreamerv3_2024/minecraft_diamond-dreamerv3.json.gz": ("minecraft", "dreamerv3", 20, 1),
    "dreamerv1/dreamer.json.gz": ("dmc_vision", "dreamer", 5, 20),
    "crafter/crafter_reward-human.json": ("crafter", "human", 5, 1),
}


def test_every_published_file_loads(published):
    files = sorted(p for p in published.rglob("*") if p.suffix in (".json", ".gz", ".yaml"))
    assert {p.relative_to(published).as_posix() for p in files} == {e["file"] for e in reference.published_index()}
    for path in files:
        data = load([path])
        assert len(data.episodes) > 0, path
        assert set(data.episodes["source"]) == {"published"}
        assert data.episodes["score"].notna().all(), path
        assert not data.runs.duplicated(["suite", "task", "method", "seed"]).any(), path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_published_file_contents(published, name):
    suite, method, runs, tasks = EXPECTED[name]
    data = load([published / name])
    assert set(data.episodes["suite"]) == {suite}
    assert set(data.episodes["method"]) == {method}
    per_task = data.runs.groupby("task").size()
    assert len(per_task) == tasks and set(per_task) == {runs}


def test_curves_keep_every_finite_point_and_drop_nan_bins(published):
    path = published / "dreamerv3_2024/atari57-dreamerv3.json.gz"
    raw = json.load(gzip.open(path))
    finite = sum(sum(1 for y in r["ys"] if y is not None) for r in raw)
    nan_bins = sum(sum(1 for y in r["ys"] if y is None) for r in raw)
    data = load([path])
    assert nan_bins > 0 and len(data.episodes) == finite
    alien0 = next(r for r in raw if r["task"] == "atari_alien" and r["seed"] == 0)
    ours = data.episodes.query("task == 'alien' and seed == 0").sort_values("step")
    xs = [x for x, y in zip(alien0["xs"], alien0["ys"]) if y is not None]
    assert np.allclose(ours["step"], xs)


def test_curl_scores_are_turned_back_into_game_scores(published):
    data = load([published / "atari100k_runs/CURL_10_evals.json.gz"])
    rows = read_json(published / "atari100k_runs/CURL_10_evals.json.gz")
    pong = next(r for r in rows if r["game"] == "Pong" and r["seed"] == 1.0)
    ours = data.episodes.query("task == 'pong' and seed == 1")["score"].item()
    assert ours == pytest.approx(pong["HNS"] * (14.6 + 20.7) - 20.7)


def test_dreamerv2_reference_keys_are_not_methods(published):
    data = load([published / "dreamerv2/baselines.json"])
    assert not {"random", "human_gamer", "human_record"} & set(data.episodes["method"])
    assert "atari_air_raid" not in set(data.episodes["task"])  # not one of the 57 games
    assert any("air_raid" in w for w in data.warnings)


def test_suite_filter_skips_other_suites(published):
    data = load([published], suite="atari100k")
    assert set(data.episodes["suite"]) == {"atari26"}
    assert {"iris", "dreamerv3", "spr"} <= set(data.episodes["method"])


@pytest.mark.parametrize("suite,name,canonical", [
    ("atari26", "MsPacman", "ms_pacman"), ("atari26", "mspacman", "ms_pacman"),
    ("atari26", "atari_ms_pacman", "ms_pacman"), ("atari57", "ALE/MsPacman-v5", "ms_pacman"),
    ("atari26", "james_bond", "jamesbond"), ("atari26", "JamesBond", "jamesbond"),
    ("atari26", "UpNDown", "up_n_down"), ("atari26", "PongNoFrameskip-v4", "pong"),
    ("dmc_vision", "dmc_cup_catch", "ball_in_cup_catch"), ("dmc_proprio", "cup_catch", "ball_in_cup_catch"),
    ("dmc_proprio", "walker-walk", "walker_walk"), ("crafter", "crafter-reward", "crafter_reward"),
    ("crafter", "CrafterReward-v1", "crafter_reward"), ("minecraft", "minecraft_diamond", "diamond"),
    ("classic", "cartpole", "CartPole-v1"), ("atari100k", "Hero", "hero"),
])
def test_task_name_variants(suite, name, canonical):
    assert canonical_task(suite, name) == canonical


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid tasks: .*ms_pacman"):
        canonical_task("atari26", "pacman3000")
    with pytest.raises(ValueError, match="valid suites: .*atari26"):
        canonical_suite("atari300")


def test_run_directory(tmp_path, make_run, atari26):
    episodes = [{"step": 1000 * i, "agent_step": 250 * i, "episode/score": float(i), "episode/length": 250,
                 "mode": "train", "final": False} for i in range(1, 5)]
    episodes.append({"step": 4000, "agent_step": 1000, "episode/score": 9.0, "episode/length": 250,
                     "mode": "eval", "final": True})
    run = make_run(tmp_path, atari26(), "dreamerv3", "ms_pacman", 3, episodes)
    with open(run / "scores.jsonl", "a") as f:
        f.write('{"step": 50')  # a line the run is still writing
    data = load([tmp_path])
    assert list(data.episodes["mode"]) == ["train"] * 4 + ["final"]
    assert set(data.episodes["source"]) == {"new"} and set(data.episodes["seed"]) == {3}
    run_row = data.runs.iloc[0]
    assert run_row["budget_frames"] == 400000 and run_row["gpu_hours"] == pytest.approx(1.0)
    assert run_row["device"] == "gpu: NVIDIA H100"


def test_dreamerv3_log_directory(tmp_path):
    logdir = tmp_path / "pong_run"
    logdir.mkdir()
    (logdir / "config.yaml").write_text("task: atari100k_pong\nseed: 2\n")
    (logdir / "scores.jsonl").write_text("".join(
        json.dumps({"step": s, "episode/score": -21.0 + s / 100000, "episode/length": 800}) + "\n"
        for s in (100000, 395000, 399000)))
    data = load([logdir])
    assert set(data.episodes["suite"]) == {"atari26"} and set(data.episodes["task"]) == {"pong"}
    assert set(data.episodes["source"]) == {"logdir"} and set(data.episodes["seed"]) == {2}
    assert list(data.episodes["step"]) == [100000, 395000, 399000]
