"""DreamerAgent with a V1/V2 preset: random-action prefill, `pretrain` updates, the train ratio after."""

import jax
import numpy as np

from agents.dreamer.agent import DreamerAgent
from preset_helpers import DISCRETE, OBS_SPACE, preset_config


def test_prefill_acts_randomly_then_pretrains_then_follows_the_train_ratio(tmp_path):
    size = {"units": 16, "rssm.deter": 16, "rssm.hidden": 16, "compute_dtype": "float32", "imag_horizon": 3,
            "batch_size": 2, "batch_length": 4, "train_after": 30, "pretrain": 3, "train_ratio": 4}
    cfg = preset_config("dreamerv1", **size)
    agent = DreamerAgent(cfg, OBS_SPACE, DISCRETE, num_envs=1, seed=0)
    rng = np.random.default_rng(0)
    state, actions, updates = None, [], []
    for t in range(40):
        obs = {"state": rng.normal(size=(1, 4)).astype(np.float32), "reward": np.zeros(1, np.float32),
               "is_first": np.array([t == 0]), "is_last": np.zeros(1, bool), "is_terminal": np.zeros(1, bool)}
        action, state = agent.act(obs, state, "train")
        actions.append(int(action[0]))
        agent.observe({**obs, "action": action})
        agent.update()
        updates.append(agent.counters["updates"])
    # 30 prefill steps of uniform actions over 3 choices
    assert set(actions[:30]) == {0, 1, 2}
    # no update before the replay holds 30 steps; then 3 pretrain updates plus 4 / (2 * 4) per step
    assert updates[28] == 0
    assert updates[29] == 3
    assert updates[39] == 3 + 5
    # The learner's state (with its update counter for the slow critic) survives a checkpoint.
    agent.save(tmp_path)
    restored = DreamerAgent(cfg, OBS_SPACE, DISCRETE, num_envs=1, seed=1)
    restored.load(tmp_path)
    assert int(restored.state["updates"]) == 8 and restored.counters == agent.counters
    for a, b in zip(jax.tree.leaves(agent.state), jax.tree.leaves(restored.state)):
        np.testing.assert_array_equal(a, b)
