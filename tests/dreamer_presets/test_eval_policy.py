"""Greedy evaluation (V1/V2 evaluate the policy's mode, V3 samples) and the exploration RNG in checkpoints."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.dreamer import heads, policies
from agents.dreamer.agent import DreamerAgent
from preset_helpers import CONTINUOUS, DISCRETE, OBS_SPACE, preset_config, tiny

OUT = jnp.array([[0.3, -2.0], [1.5, 0.7]])  # policy head output for 1-d actions: (mean logit, std logit)


def test_modes_of_the_continuous_policies():
    assert np.allclose(heads.BoundedNormalPolicy(1).mode(OUT), np.tanh(OUT[:, :1]))
    assert np.allclose(policies.TruncNormalPolicy(1).mode(OUT), np.tanh(OUT[:, :1]))
    assert np.allclose(policies.TanhNormalPolicy(1).mode(OUT), np.tanh(5.0 * np.tanh(OUT[:, :1] / 5.0)))


def test_discrete_mode_is_the_argmax_one_hot():
    logits = jnp.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert np.array_equal(heads.DiscretePolicy(3, unimix=0.01).mode(logits), np.eye(3)[[1, 0]])


def act_and_mode(agent: str, act_space: gym.Space, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Actions of `act` for 64 envs, and the policy's mode at the latent states `act` returns."""
    dreamer = DreamerAgent(tiny(agent), OBS_SPACE, act_space, num_envs=64, seed=0)
    obs = {"state": np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32), "is_first": np.ones(64, bool)}
    action, state = dreamer.act(obs, None, mode)
    learner = dreamer.learner
    out = heads.head(dreamer.state["params"]["pol"], learner.rssm.feat({k: state[k] for k in ("deter", "stoch")}))
    greedy = np.asarray(learner.policy.mode(out))
    return action, greedy.argmax(-1) if isinstance(act_space, gym.spaces.Discrete) else greedy


@pytest.mark.parametrize("agent,act_space", [("dreamerv1", CONTINUOUS), ("dreamerv2", DISCRETE)])
def test_v1_v2_evaluate_the_mode_and_train_on_samples(agent, act_space):
    assert preset_config(agent)["eval_policy"] == "mode"
    action, greedy = act_and_mode(agent, act_space, "eval")
    assert np.allclose(action, greedy, atol=1e-6)
    action, greedy = act_and_mode(agent, act_space, "train")
    assert not np.allclose(action, greedy, atol=1e-3)


def test_v3_samples_in_eval():
    assert preset_config("dreamerv3")["eval_policy"] == "sample"
    action, greedy = act_and_mode("dreamerv3_2023", DISCRETE, "eval")
    assert not np.array_equal(action, greedy)


def test_unknown_eval_policy_lists_the_choices():
    with pytest.raises(ValueError, match="eval_policy 'greedy'; valid: sample, mode"):
        tiny("dreamerv2", eval_policy="greedy")


def test_exploration_noise_continues_after_a_checkpoint(tmp_path):
    """V1's action noise draws from an RNG that a checkpoint saves, so a resumed run draws the same noise."""
    cfg = tiny("dreamerv1", train_after=0)
    obs = {"state": np.zeros((1, 4), np.float32), "is_first": np.ones(1, bool)}
    original = DreamerAgent(cfg, OBS_SPACE, CONTINUOUS, num_envs=1, seed=3)
    original.act(obs, None, "train")  # advance the exploration RNG
    original.save(tmp_path)
    resumed = DreamerAgent(cfg, OBS_SPACE, CONTINUOUS, num_envs=1, seed=3)
    resumed.load(tmp_path)
    assert "explore_rng" not in resumed.counters
    noise = [agent.explore(np.zeros((1, 2), np.float32), 10) for agent in (original, resumed)]
    fresh = DreamerAgent(cfg, OBS_SPACE, CONTINUOUS, num_envs=1, seed=3).explore(np.zeros((1, 2), np.float32), 10)
    assert np.array_equal(noise[0], noise[1]) and not np.array_equal(noise[0], fresh)
