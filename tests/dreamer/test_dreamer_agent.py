"""The Dreamer agent end to end on small networks: RSSM reset, learning on a fixed batch, determinism,
checkpoint round trip, config validation, image and continuous-action paths."""

from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from agents.dreamer.agent import DreamerAgent

CONFIG = Path(__file__).resolve().parents[2] / "harness" / "config" / "agent" / "dreamerv3.yaml"
VECTOR = gym.spaces.Dict({"state": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)})
IMAGE = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)})


def tiny_config(**overrides) -> dict:
    """The real dreamerv3 config with small widths and batches so a test compiles and runs in seconds."""
    cfg = yaml.safe_load(CONFIG.read_text())
    # train_after 8 windows of 9 steps: the first update at the 16th step of one env
    cfg.update(size="1m", units=16, depth=2, batch_size=4, batch_length=8, train_after=8, train_ratio=32)
    cfg["rssm"].update(deter=64, hidden=16, classes=4)
    cfg["replay"]["capacity"] = 1000
    cfg.update(overrides)
    return cfg


def drive(agent: DreamerAgent, space: gym.spaces.Dict, steps: int, seed: int = 0, start: int = 0) -> dict:
    """Feed synthetic episodes of 10 steps through act/observe/update as the loop would."""
    rng = np.random.default_rng(seed + start)
    state, metrics = None, {}
    for t in range(start, start + steps):
        obs = {k: rng.integers(0, 255, (1, *s.shape)).astype(s.dtype) for k, s in space.spaces.items()}
        obs.update(reward=np.array([t % 3], np.float32), is_first=np.array([t % 10 == 0]),
                   is_last=np.array([t % 10 == 9]), is_terminal=np.array([t % 20 == 19]))
        action, state = agent.act(obs, state, "train")
        agent.observe({**obs, "action": action})
        metrics = agent.update() or metrics
    return metrics


def params_equal(a: DreamerAgent, b: DreamerAgent) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)))


def test_rssm_resets_on_is_first():
    agent = DreamerAgent(tiny_config(), VECTOR, gym.spaces.Discrete(3), 1, seed=0)
    learner, params = agent.learner, agent.state["params"]
    tokens = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 16))
    actions = jax.nn.one_hot(jnp.array([[0, 1, 2, 0, 1]] * 2), 3)
    is_first = jnp.array([[True, False, False, True, False]] * 2)
    zero = learner.rssm.initial(2)
    noisy = {k: jax.random.normal(jax.random.PRNGKey(2), v.shape) for k, v in zero.items()}
    key = jax.random.PRNGKey(3)
    _, from_zero, _ = learner.rssm.observe(params["dyn"], zero, tokens, actions, is_first, key)
    _, from_noise, _ = learner.rssm.observe(params["dyn"], noisy, tokens, actions, is_first, key)
    np.testing.assert_array_equal(from_zero["deter"], from_noise["deter"])
    # Without the reset flag the carried state does matter.
    _, kept, _ = learner.rssm.observe(params["dyn"], noisy, tokens, actions, jnp.zeros_like(is_first), key)
    assert not np.allclose(kept["deter"][:, 0], from_zero["deter"][:, 0])
    # A reset in the middle of a sequence forgets everything before it (t=3 sees only its own inputs).
    _, late, _ = learner.rssm.observe(params["dyn"], zero, tokens[:, 3:], actions[:, 3:], is_first[:, 3:], key)
    assert np.allclose(from_zero["deter"][:, 3], late["deter"][:, 0], atol=1e-6)


def test_loss_decreases_on_a_fixed_batch():
    cfg = tiny_config()
    cfg["optimizer"].update(lr=1e-3, warmup=0)
    agent = DreamerAgent(cfg, VECTOR, gym.spaces.Discrete(3), 1, seed=0)
    drive(agent, VECTOR, 30)
    batch, _, _ = agent._sample()
    history = []
    for i in range(40):
        agent.state, metrics, _ = agent.learner.train_step(agent.state, batch, jax.random.PRNGKey(i))
        history.append({k: float(v) for k, v in metrics.items()})
    for term, factor in (("loss/rec_state", 0.7), ("loss/rew", 0.7), ("loss/con", 0.95)):
        first, last = history[0][term], history[-1][term]
        assert last < factor * first, f"{term}: {first:.3f} -> {last:.3f}"


def test_same_seed_same_parameters_and_checkpoint_round_trip(tmp_path):
    make = lambda: DreamerAgent(tiny_config(), VECTOR, gym.spaces.Discrete(3), 1, seed=7)  # noqa: E731
    a, b = make(), make()
    metrics = drive(a, VECTOR, 40)
    drive(b, VECTOR, 40)
    assert metrics["train/updates"] > 10
    assert params_equal(a, b)
    a.save(tmp_path)
    c = make()
    c.load(tmp_path)
    assert params_equal(a, c) and c.counters == a.counters and len(c.replay) == len(a.replay)
    drive(a, VECTOR, 25, start=40)
    drive(c, VECTOR, 25, start=40)
    assert a.counters["updates"] > metrics["train/updates"]
    assert params_equal(a, c)  # a resumed agent continues bit for bit
    other = DreamerAgent(tiny_config(), VECTOR, gym.spaces.Discrete(3), 1, seed=8)
    assert not params_equal(a, other)


def test_image_observations_and_continuous_actions():
    agent = DreamerAgent(tiny_config(), IMAGE, gym.spaces.Box(-1, 1, (2,), np.float32), 1, seed=0)
    metrics = drive(agent, IMAGE, 20)
    assert metrics["train/updates"] >= 1 and np.isfinite(metrics["train/loss/total"])
    assert "train/loss/rec_image" in metrics
    obs = {"image": np.zeros((1, 16, 16, 3), np.uint8), "is_first": np.array([True])}
    action, _ = agent.act(obs, None, "eval")
    assert action.shape == (1, 2) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)


def test_replay_stores_the_policys_action_and_float32_latents():
    """As the official driver: the env gets the action clipped, the replay the policy's own sample (which
    the filter continues from) and the policy's latent in float32 (`RSSM.entry_space`)."""
    agent = DreamerAgent(tiny_config(), VECTOR, gym.spaces.Box(-1, 1, (2,), np.float32), 1, seed=0)
    rng, state, executed, deter = np.random.default_rng(0), None, [], []
    for t in range(30):
        obs = {"state": rng.normal(size=(1, 4)).astype(np.float32), "reward": np.zeros(1, np.float32),
               "is_first": np.array([t == 0]), "is_last": np.array([False]), "is_terminal": np.array([False])}
        action, state = agent.act(obs, state, "train")
        agent.observe({**obs, "action": action})
        executed.append(action[0])
        deter.append(np.asarray(state["deter"][0]))
    stored = agent.replay.stored()["action"][0, :30]
    assert np.abs(stored).max() > 1.0  # the untrained policy's normal reaches past the bounds
    np.testing.assert_array_equal(np.clip(stored, -1, 1), np.array(executed))
    np.testing.assert_array_equal(stored[-1], np.asarray(state["prevact"][0]))
    assert agent.replay.stored()["deter"].dtype == np.float32 and agent.replay.stored()["stoch"].dtype == np.float32
    np.testing.assert_array_equal(agent.replay.stored()["deter"][0, :30], np.array(deter))


def test_config_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid sizes: 1m, 12m, 25m, 50m, 100m, 200m, 400m"):
        DreamerAgent.validate_config(tiny_config(size="3m"))
    cfg = tiny_config()
    cfg["rssm"]["core"] = "lstm"
    with pytest.raises(ValueError, match="valid: blockgru"):
        DreamerAgent(cfg, VECTOR, gym.spaces.Discrete(3), 1, seed=0)



def test_bfloat16_compute_keeps_float32_parameters():
    agent = DreamerAgent(tiny_config(compute_dtype="bfloat16"), VECTOR, gym.spaces.Discrete(3), 1, seed=0)
    metrics = drive(agent, VECTOR, 20)
    assert metrics["train/updates"] >= 1 and np.isfinite(metrics["train/loss/total"])
    assert {x.dtype for x in jax.tree.leaves(agent.state["params"])} == {jnp.dtype(jnp.float32)}


def test_checkpoint_of_another_config_is_refused_clearly(tmp_path):
    DreamerAgent(tiny_config(), VECTOR, gym.spaces.Discrete(3), 1, seed=0).save(tmp_path)
    wider = DreamerAgent(tiny_config(units=32), VECTOR, gym.spaces.Discrete(3), 1, seed=0)
    with pytest.raises(ValueError, match="written by another config or code version"):
        wider.load(tmp_path)


def test_v3_starts_when_replay_holds_train_after_windows():
    """As the official replay counts (len() = sequences to sample): with 2 envs and windows of 9 steps,
    16 windows are there at the 16th step of each env, not at the 8th, when 16 steps would be."""
    agent = DreamerAgent(tiny_config(train_after=16, train_ratio=64), VECTOR, gym.spaces.Discrete(3), 2, seed=0)
    rng, state, first = np.random.default_rng(0), None, None
    for t in range(20):
        obs = {"state": rng.normal(size=(2, 4)).astype(np.float32), "reward": np.zeros(2, np.float32),
               "is_first": np.full(2, t == 0), "is_last": np.zeros(2, bool), "is_terminal": np.zeros(2, bool)}
        action, state = agent.act(obs, state, "train")
        agent.observe({**obs, "action": action})
        if agent.update() and first is None:
            first = t + 1
    # then 2 envs x 64 / (4 x 8) = 4 updates per step, at steps 16 to 20
    assert first == 16 and agent.counters["updates"] == 5 * 4
