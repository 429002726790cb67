"""Official DreamerV3 log directories as report input: what their config.yaml really holds."""

import shutil
from pathlib import Path

import pytest

from results.load import load
from results.report import build

LOGDIRS = Path(__file__).parent / "data" / "official_logdirs"


def test_a_real_official_dmc_logdir_reads_method_repeat_budget_and_state():
    run = load([LOGDIRS / "dmc_cartpole_balance_size1m"]).runs.iloc[0]
    assert (run["suite"], run["task"], run["method"], run["seed"]) == ("dmc_proprio", "cartpole_balance", "dreamerv3", 0)
    assert run["action_repeat"] == 1  # env.dmc.repeat
    assert run["budget_frames"] == 4000  # run.steps x repeat
    # Last metrics write at 3690, the one before at 3330: the loop ended within one writing interval.
    assert (run["state"], run["step"]) == ("done", 4000)


def test_an_official_logdir_stopped_early_is_unfinished(tmp_path):
    logdir = shutil.copytree(LOGDIRS / "dmc_cartpole_balance_size1m", tmp_path / "run")
    lines = (logdir / "metrics.jsonl").read_text().splitlines()
    (logdir / "metrics.jsonl").write_text("\n".join(lines[:4]) + "\n")  # writes up to step 2002
    (logdir / "scores.jsonl").write_text("\n".join((logdir / "scores.jsonl").read_text().splitlines()[:2]) + "\n")
    run = load([logdir]).runs.iloc[0]
    assert run["state"] == "unfinished" and run["step"] < 4000


def test_the_report_on_the_real_dmc_logdir_flags_its_budget_and_repeat(tmp_path):
    text = build([str(LOGDIRS / "dmc_cartpole_balance_size1m")], tmp_path / "report").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| dreamerv3 (logdir) | cartpole_balance"))
    assert "| done |" in row
    assert "budget 4,000 frames, paper 500,000" in row and "action repeat 1, paper 2" in row
    assert "no episode under the final-score rule" in row  # its last episode ends at 3,003 < 3,600


def test_an_official_crafter_logdir_reports_returns_and_says_why_the_score_is_missing(tmp_path):
    text = build([str(LOGDIRS / "crafter_reward_size1m")], tmp_path / "report").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| dreamerv3 (logdir) | crafter_reward"))
    assert "no Crafter score: its episodes have no achievement counts" in row
    assert "mean return 3.10 over 3 episodes" in row  # (2.1 + 3.1 + 4.1) / 3
    assert (tmp_path / "report" / "plots" / "crafter_curves.png").exists()


def test_an_official_atari100k_logdir_gets_its_score_from_the_papers_window(tmp_path):
    data = load([LOGDIRS / "atari100k_pong_size1m"])
    run = data.runs.iloc[0]
    assert (run["suite"], run["task"], run["seed"], run["action_repeat"]) == ("atari26", "pong", 1, 4)
    assert (run["budget_frames"], run["state"]) == (440000, "done")
    text = build([str(LOGDIRS / "atari100k_pong_size1m")], tmp_path / "report").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| dreamerv3 (logdir) | pong"))
    # Episodes ending at 394,000 (-11) and 396,000 (-12) frames fall in [390k, 400k].
    assert "| -11.5 | 2 |" in row and "budget 440,000 frames, paper 400,000" in row
