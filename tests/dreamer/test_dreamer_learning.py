"""DreamerV3 learns CartPole-v1 through the real CLI.

Settings: agent.size=1m, the classic suite's dreamerv3 settings (agent_suite/dreamerv3_classic.yaml:
train ratio 128 with 16 x 32 batches, i.e. one update per 4 agent steps, lr 3e-4 with 100 warm-up
updates), 3000 agent steps. Measured (seed 0, 2 CPU cores shared with other jobs, load average 5-8): first 10
training episodes 21.3, last 5 211.2, final evaluation 151.8 (mean of 20), 5 minutes wall; after the
block-linear initialiser fix (2026-12-01, official fan-in): 21.3, 184.6, 187.9, 7 minutes at load 6. A 5000-step
run: first 10 episodes 22, training episodes of 140-500 steps after ~2000 steps, final evaluation 270.
"""

import json

import pytest

STEPS = 3000


@pytest.mark.slow
def test_dreamerv3_learns_cartpole(tmp_path, run_cli):
    run_cli("harness.run", "suite=classic", "task=CartPole-v1", "agent=dreamerv3", "agent.size=1m",
            f"steps={STEPS}", f"root={tmp_path}", cwd=tmp_path, timeout=1800)
    lines = (tmp_path / "classic" / "dreamerv3" / "CartPole-v1" / "seed0" / "scores.jsonl").read_text()
    rows = [json.loads(line) for line in lines.splitlines()]
    train = [r["episode/score"] for r in rows if r["mode"] == "train"]
    final = [r["episode/score"] for r in rows if r["mode"] == "eval" and r["final"]]
    first, last = sum(train[:10]) / 10, sum(train[-5:]) / 5
    evaluation = sum(final) / len(final)
    print(f"first 10 train episodes {first:.1f}, last 5 {last:.1f}, final eval {evaluation:.1f} over {len(final)}")
    assert first < 50  # a random policy balances ~22 steps
    assert last > 3 * first and last > 100
    assert evaluation > 100
