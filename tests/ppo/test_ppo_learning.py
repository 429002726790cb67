"""PPO learns CartPole through the real CLI, loop and run directory (about a minute on 2 idle cores)."""

from __future__ import annotations

import json

import numpy as np
import pytest

BUDGET = 100_000  # agent steps: the classic suite's own budget


@pytest.mark.slow
def test_ppo_solves_cartpole_through_the_cli(tmp_path, run_cli):
    run_cli("harness.run", "suite=classic", "task=CartPole-v1", "agent=ppo", f"steps={BUDGET}", "root=runs",
            "run.parallel_envs=false", cwd=tmp_path, timeout=900)
    run_dir = tmp_path / "runs" / "classic" / "ppo" / "CartPole-v1" / "seed0"
    records = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    final = [r["episode/score"] for r in records if r["mode"] == "eval" and r["final"]]
    assert len(final) == 20  # the suite's final evaluation, after the whole budget
    assert np.mean(final) >= 400, f"final evaluation returns {final}"
    early = [r["episode/score"] for r in records if r["mode"] == "train" and r["step"] <= 5_000]
    assert np.mean(early) < 100  # it started from scratch (a random policy scores about 22)
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("train/policy_loss" in m for m in metrics)
    assert metrics[-1]["agent_step"] >= BUDGET
