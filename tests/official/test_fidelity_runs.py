"""`make fidelity` in miniature: both agents run through the harness with identical tiny settings, and the
study page (results.fidelity) is built from their real run directories: their config files agree on
every setting the page checks, both sides trained, and the page gives the verdict of each task.
"""

import json

import pandas as pd
import pytest

from results import fidelity

pytestmark = pytest.mark.official

STEPS = 150
# episodes of 50 agent steps (cap 100 control steps, repeat 2), one update per agent step from step 24,
# where the replay holds batch_size x batch_length = 16 windows of 9 steps (the official start; ours
# counts windows too but defaults to the full-size 1024)
TINY = ("suite=dmc_proprio", "task=cartpole_balance", "seeds=2", f"steps={STEPS}", "agent.size=1m", "agent.envs=1",
        "agent.batch_size=2", "agent.batch_length=8", "agent.train_ratio=16", "suite.protocol.episode_cap=100",
        "suite.protocol.final_eval_episodes=1", "workers=2")


def test_side_by_side_runs_make_the_study_page(tmp_path, run_cli, official_python):
    run_cli("harness.run", "agent=dreamerv3", "agent.train_after=16", *TINY, cwd=tmp_path, timeout=600)
    run_cli("harness.run", "agent=dreamerv3_official", *TINY, cwd=tmp_path, timeout=600)
    for agent in fidelity.OURS, fidelity.OFFICIAL:
        for seed in 0, 1:
            run = tmp_path / "runs" / "dmc_proprio" / agent / "cartpole_balance" / f"seed{seed}"
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            assert any("train/loss/dyn" in m for m in metrics), (agent, seed)  # both sides trained

    fidelity.build(tmp_path / "runs", tmp_path / "fidelity.md", reps=500)
    page = (tmp_path / "fidelity" / "dmc_proprio.md").read_text()
    assert f"| dmc_proprio | cartpole_balance | 2 | {STEPS} | 2 | 1m | 16 | 1 | 2 x 8 |" in page
    table = tmp_path / "fidelity" / "dmc_proprio" / "tables" / "dmc_proprio_reproduction_dreamerv3_official-new.csv"
    row = pd.read_csv(table).iloc[0]
    assert row["task"] == "cartpole_balance" and row["new_runs"] == 2 and row["published_runs"] == 2
    assert row["outcome"] in {"reproduced", "below", "above", "inconclusive"}
    assert (tmp_path / "fidelity" / "dmc_proprio" / "plots" / "dmc_proprio_curves.png").exists()
