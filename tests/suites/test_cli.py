"""`python -m harness.run suite=<s> agent=random` on every runnable suite, with tiny budgets.

Each run must finish and write scores.jsonl whose `step` is in env frames (agent steps x repeat).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# suite, task, agent steps, overrides that keep episodes short, action repeat
CASES = [
    ("atari26", "pong", 150, ["suite.protocol.episode_cap=200", "suite.protocol.final_eval_episodes=1"], 4),
    ("atari57", "breakout", 150, ["suite.protocol.episode_cap=200", "suite.protocol.final_eval_episodes=1"], 4),
    ("dmc_proprio", "cup_catch", 150,  # an alias: the run directory takes the canonical name
     ["suite.protocol.episode_cap=100", "suite.protocol.final_eval_episodes=1"], 2),
    ("dmc_vision", "walker_walk", 120, ["suite.protocol.episode_cap=100", "suite.protocol.final_eval_episodes=1"], 2),
    ("crafter", "crafter_reward", 120, ["suite.protocol.episode_cap=50"], 1),
]


@pytest.mark.parametrize("suite, task, steps, overrides, repeat", CASES, ids=[c[0] for c in CASES])
def test_random_agent_run_writes_scores_in_frames(tmp_path, load_suite, suite, task, steps, overrides, repeat):
    command = [sys.executable, "-m", "harness.run", f"suite={suite}", "agent=random", f"task={task}",
               f"steps={steps}", f"root={tmp_path}", *overrides]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / suite / "random" / load_suite(suite).canonical_task(task) / "seed0"
    lines = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    train = [line for line in lines if line["mode"] == "train"]
    assert len(train) >= 2
    for line in lines:
        assert line["step"] == line["agent_step"] * repeat
        assert line["episode/length"] >= 1
    assert max(line["step"] for line in train) <= steps * repeat
    if suite == "crafter":
        for line in train:
            assert len([key for key in line if key.startswith("log/achievement_")]) == 22
    else:
        evals = [line for line in lines if line["mode"] == "eval"]
        assert len(evals) == 1 and evals[0]["step"] == steps * repeat
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"
