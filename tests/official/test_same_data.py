"""`agents.official.same_data`: our agent and the official one learning from the same recorded replay.

The replay is recorded by a short real run of agent=dreamerv3 (DMC cartpole, one env, 150 steps, no
update: the replay never reaches its 1024 windows). Both sides then make 41 updates of 16 x 64 steps on
the same windows from the same weights, each with its own random draws; the official side logs 40.
Averaged over 20 updates (20,480 replayed steps), the sides' losses agree to 2% once the official
twohot mean is computed without its rounding (measured: 0.6% at worst, the continue loss), and the
official code as published shows the rounding noise in its advantages (std about 0.1, ours 1e-5).
"""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.official

UPDATES, BLOCK = 41, 20
LOSSES = ("dyn", "rep", "rew", "con", "value", "repval")  # the same names on both sides


def block_means(path, key: str) -> np.ndarray:
    rows = [json.loads(line) for line in path.read_text().splitlines()][: UPDATES - 1]
    values = np.array([row[key] for row in rows])
    return values.reshape(-1, BLOCK).mean(1)


def test_both_sides_learn_alike_from_the_same_replay(tmp_path, run_cli, official_python):
    run_cli("harness.run", "agent=dreamerv3", "suite=dmc_proprio", "task=cartpole_balance", "seeds=1", "steps=150",
            "agent.size=1m", "agent.envs=1", "suite.protocol.final_eval_episodes=1", cwd=tmp_path, timeout=600)
    run = tmp_path / "runs" / "dmc_proprio" / "dreamerv3" / "cartpole_balance" / "seed0"
    out = tmp_path / "same_data"
    done = run_cli("agents.official.same_data", str(run), "--updates", str(UPDATES), "--block", str(BLOCK),
                   "--out", str(out), cwd=tmp_path, timeout=900)

    ours, official, exact = (out / f"{side}.jsonl" for side in ("ours", "official", "official_exact_twohot"))
    for loss in LOSSES:
        key = f"loss/{loss}"
        np.testing.assert_allclose(block_means(ours, key), block_means(exact, key), rtol=0.02, err_msg=key)
    np.testing.assert_allclose(block_means(ours, "policy_entropy"), block_means(exact, "ent/action"), rtol=0.02)
    # The published official code: advantages that are rounding noise, thousands of times ours
    assert (block_means(official, "adv_std") > 0.01).all()
    assert (block_means(ours, "adv_std") < 1e-3).all() and (block_means(exact, "adv_std") < 1e-3).all()

    table = (out / "same_data.md").read_text()
    assert table in done.stdout
    for side in ("ours", "official", "official_exact_twohot"):
        assert f"| loss value | {side} |" in table
