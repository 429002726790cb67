"""PPO: GAE and losses against direct computations, the step convention, checkpoints, config errors."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from agents.ppo.agent import PPOAgent, variant
from agents.ppo.losses import policy_loss, value_loss
from agents.ppo.observations import Observations
from agents.ppo.rollout import RolloutBuffer, gae
from harness.plan import CONFIG_DIR


def ppo_config(discrete: dict | None = None, continuous: dict | None = None, **shared) -> dict:
    """harness/config/agent/ppo.yaml, resolved as the harness resolves it, with some settings changed."""
    config = yaml.safe_load((CONFIG_DIR / "agent" / "ppo.yaml").read_text())
    config["anneal_steps"] = 100_000  # ${suite.protocol.budget}: the harness fills in the run's budget
    config["discrete"].update(discrete or {})
    config["continuous"].update(continuous or {})
    return {**config, "threads": 1, **shared}


def direct_advantages(rewards, values, is_last, is_terminal, gamma, lam):
    """A_t = sum_k (gamma lam)^k delta_{t+k}, summed explicitly up to the episode's end or the rollout's."""
    steps, envs = rewards.shape[0] - 1, rewards.shape[1]
    advantages = np.zeros((steps, envs))
    for b in range(envs):
        for t in range(steps):
            if is_last[t, b]:
                continue  # not a decision: its value is never used
            for k, u in enumerate(range(t, steps)):
                future = 0.0 if is_terminal[u + 1, b] else values[u + 1, b]
                delta = rewards[u + 1, b] + gamma * future - values[u, b]
                advantages[t, b] += (gamma * lam) ** k * delta
                if is_last[u + 1, b]:
                    break
    return advantages


def test_gae_matches_direct_sum_with_terminations_and_truncations():
    rng = np.random.default_rng(0)
    steps, envs, gamma, lam = 40, 5, 0.97, 0.9
    rewards, values = rng.normal(size=(steps + 1, envs)), rng.normal(size=(steps + 1, envs))
    is_last = rng.random((steps + 1, envs)) < 0.15
    is_terminal = is_last & (rng.random((steps + 1, envs)) < 0.5)
    assert (is_last & ~is_terminal).any() and is_terminal.any()
    tensors = [torch.as_tensor(x) for x in (rewards, values, is_last, is_terminal)]
    advantages, returns = gae(*tensors, gamma, lam)
    expected = direct_advantages(rewards, values, is_last, is_terminal, gamma, lam)
    decisions = ~is_last[:-1]
    np.testing.assert_allclose(advantages.numpy()[decisions], expected[decisions], rtol=1e-10)
    np.testing.assert_allclose(returns.numpy(), advantages.numpy() + values[:-1])


def test_gae_bootstraps_a_time_limit_but_not_a_termination():
    # One env, rows: s0 -> s1 (episode ends there with reward 1), V(s1) = 10.
    rewards = torch.tensor([[0.0], [1.0]])
    values = torch.tensor([[0.0], [10.0]])
    last = torch.tensor([[False], [True]])
    truncated, _ = gae(rewards, values, last, torch.tensor([[False], [False]]), 0.5, 0.95)
    terminated, _ = gae(rewards, values, last, torch.tensor([[False], [True]]), 0.5, 0.95)
    assert truncated.item() == pytest.approx(1.0 + 0.5 * 10.0)
    assert terminated.item() == pytest.approx(1.0)


def test_policy_loss_clips_only_in_the_direction_of_the_advantage():
    ratio = torch.tensor([1.5, 0.5, 1.5, 0.5, 1.05], requires_grad=True)
    advantage = torch.tensor([1.0, -1.0, -1.0, 1.0, 2.0])
    loss = policy_loss(ratio, advantage, clip=0.2)
    # min(r A, clip(r) A) per sample: 1.2, -0.8, -1.5, 0.5, 2.1
    assert loss.item() == pytest.approx(-(1.2 - 0.8 - 1.5 + 0.5 + 2.1) / 5)
    loss.backward()
    # Gains beyond the clip range give no gradient; the pessimistic unclipped terms still do.
    np.testing.assert_allclose(ratio.grad.numpy(), -advantage.numpy() * np.array([0, 0, 1, 1, 1]) / 5)


def test_value_loss_takes_the_worse_of_clipped_and_unclipped():
    old, target = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])
    value = torch.tensor([2.0, 0.5])
    # Sample 0: unclipped (2-1)^2 = 1, clipped (0.1-1)^2 = 0.81 -> 1; sample 1: 0.25 vs 0.81 -> 0.81.
    assert value_loss(value, old, target, clip=0.1).item() == pytest.approx(0.5 * (1.0 + 0.81) / 2)
    assert value_loss(value, old, target, clip=None).item() == pytest.approx(0.5 * (1.0 + 0.25) / 2)


def test_buffer_marks_an_episode_cut_by_an_env_restart_as_a_time_limit_end():
    specs = {k: ((1,), torch.bool) for k in ("is_first", "is_last", "is_terminal")}
    buffer = RolloutBuffer(4, specs, torch.device("cpu"))
    for first in (True, False, True):  # the third step restarts without the second having ended
        buffer.add({"is_first": torch.tensor([first]), "is_last": torch.tensor([False]),
                    "is_terminal": torch.tensor([False])})
    assert buffer.data["is_last"][:3, 0].tolist() == [False, True, False]


def test_frame_stack_shifts_frames_and_restarts_at_is_first():
    space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (96, 96, 1), np.uint8)})
    obs = Observations(variant(ppo_config(), continuous=False), space, torch.device("cpu"))
    assert obs.image_shape == (4, 84, 84)
    frames = [np.full((2, 96, 96, 1), 10 * (i + 1), np.uint8) for i in range(5)]
    first = [np.array([True, True]), *[np.array([False, False])] * 3, np.array([False, True])]
    stack = None
    for frame, is_first in zip(frames, first):
        stack = obs.image({"image": frame, "is_first": is_first}, stack)
    assert stack[0, :, 0, 0].tolist() == [20, 30, 40, 50]  # the last four frames, oldest first
    assert stack[1, :, 0, 0].tolist() == [50, 50, 50, 50]  # a new episode starts from copies


def test_rollout_skips_the_ignored_action_at_episode_ends(vector_driver):
    """Updates come every `rollout` loop steps; is_last rows are not trained on."""
    driver = vector_driver("classic", "CartPole-v1", num_envs=2, seed=0)
    agent = PPOAgent(ppo_config(discrete={"rollout": 32}), driver.obs_space, driver.act_space, 2, seed=0)
    metrics = driver.run(agent, 32 * 3 + 1)
    assert len(metrics) == 3 and driver.scores  # episodes ended inside the rollouts
    ends = sum(m["transitions"] for m in metrics)
    assert all(m["transitions"] <= 64 for m in metrics) and ends < 3 * 64
    assert metrics[0]["learning_rate"] == pytest.approx(2.5e-4)  # annealing starts from the full rate
    assert all(np.isfinite(list(m.values())).all() for m in metrics)


def test_checkpoint_round_trip_continues_identically(tmp_path, vector_driver):
    driver = vector_driver("classic", "CartPole-v1", num_envs=2, seed=1)
    config = ppo_config(discrete={"rollout": 16, "epochs": 2, "minibatches": 2})
    agent = PPOAgent(config, driver.obs_space, driver.act_space, 2, seed=3)
    driver.run(agent, 16 + 5)  # one update, then mid-rollout
    agent.save(tmp_path)
    restored = PPOAgent(config, driver.obs_space, driver.act_space, 2, seed=99)
    restored.load(tmp_path)
    for _ in range(30):  # crosses the next update
        obs = copy.deepcopy(driver.obs)
        agent.act(obs, None, "eval")  # evaluation draws from its own generator: training is unaffected
        driver.run(agent, 1)
        action, _ = restored.act(obs, None, "train")
        np.testing.assert_array_equal(action, driver.last_action)
        restored.observe(obs | {"action": action})
        restored.update()
    for a, b in zip(agent.net.state_dict().values(), restored.net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert restored.updates == agent.updates == 3  # two of them after the restore


def test_continuous_variant_on_pendulum_keeps_actions_in_bounds(vector_driver):
    driver = vector_driver("classic", "Pendulum-v1", num_envs=2, seed=0)
    config = ppo_config(continuous={"rollout": 64, "minibatches": 4})
    agent = PPOAgent(config, driver.obs_space, driver.act_space, 2, seed=0)
    assert agent.cfg["obs_norm"] and agent.cfg["rewards"] == "normalise" and agent.cfg["clip"] == 0.2
    metrics = driver.run(agent, 64 + 1)
    assert len(metrics) == 1 and np.isfinite(list(metrics[0].values())).all()
    action, _ = agent.act(driver.obs, None, "eval")
    assert action.shape == (2, 1) and action.dtype == np.float32 and np.abs(action).max() <= 1.0
    assert agent.obs.rms.count > 64  # observation statistics were updated by training steps only


def test_variant_merges_the_action_space_section():
    config = ppo_config()
    assert variant(config, continuous=False)["rollout"] == 128
    assert variant(config, continuous=True)["rollout"] == 2048
    assert "continuous" not in variant(config, continuous=True)


@pytest.mark.parametrize(
    "change, message",
    [({"discrete": {"clip": -1}}, "agent.clip must be a non-negative number"),
     ({"lr": 0.1}, "agent.lr depends on the action space: set agent.discrete.lr or agent.continuous.lr"),
     ({"continuous": {"learning_rate": 0.1}}, "unknown PPO setting(s) ['learning_rate'] in agent.continuous"),
     ({"device": "tpu"}, "agent.device must be auto, cpu, cuda or cuda:N"),
     ({"image_size": 16}, "agent.image_size must be null or an integer >= 36"),
     ({"continuous": {"rewards": "clip"}}, "agent.rewards must be one of raw, sign, normalise")],
)
def test_bad_settings_raise_a_clear_error(change, message):
    config = ppo_config(**change)
    with pytest.raises(ValueError) as error:
        PPOAgent.validate_config(config)
    assert message in str(error.value)


def test_the_cli_rejects_bad_settings_before_writing_anything(tmp_path, run_cli):
    args = ("suite=classic", "agent=ppo", "root=out", "agent.discrete.clip=-1")
    result = run_cli("harness.run", *args, cwd=tmp_path, check=False)
    assert result.returncode != 0 and "agent.clip must be a non-negative number" in result.stdout + result.stderr
    assert not any(tmp_path.iterdir())


def test_reward_transforms(vector_driver):
    driver = vector_driver("classic", "CartPole-v1", num_envs=2, seed=0)
    rewards = np.array([3.0, -0.5])
    steps = [{"reward": np.array([0.0, -0.5]), "is_first": np.array([True, False])}]  # env 0 starts an episode
    steps += [{"reward": rewards, "is_first": np.array([False, False])}] * 3
    sign = PPOAgent(ppo_config(discrete={"rewards": "sign"}), driver.obs_space, driver.act_space, 2, seed=0)
    assert sign.scale_reward(steps[1]).tolist() == [1.0, -1.0]
    normalise = PPOAgent(ppo_config(discrete={"rewards": "normalise"}), driver.obs_space, driver.act_space, 2, seed=0)
    scaled = [normalise.scale_reward(step) for step in steps]
    # Discounted returns per env; env 0's reset step has no reward and does not enter the statistics.
    returns = [3.0, 3 * 0.99 + 3, (3 * 0.99 + 3) * 0.99 + 3, -0.5, -0.5 * 0.99 - 0.5,
               (-0.5 * 0.99 - 0.5) * 0.99 - 0.5, ((-0.5 * 0.99 - 0.5) * 0.99 - 0.5) * 0.99 - 0.5]
    np.testing.assert_allclose(scaled[-1], rewards / np.std(returns), rtol=1e-3)


def test_nature_cnn_on_atari_frames_in_bfloat16(vector_driver):
    driver = vector_driver("atari26", "pong", num_envs=2, seed=0)
    config = ppo_config(precision="bfloat16", discrete={"rollout": 16, "minibatches": 2})
    agent = PPOAgent(config, driver.obs_space, driver.act_space, 2, seed=0)
    assert agent.obs.image_shape == (4, 84, 84) and agent.cfg["rewards"] == "sign"
    metrics = driver.run(agent, 2 * 16 + 1)
    assert len(metrics) == 2 and np.isfinite(list(metrics[0].values())).all()
    assert driver.state.shape == (2, 4, 84, 84) and driver.state.dtype == torch.uint8
    assert all(p.dtype == torch.float32 for p in agent.net.parameters())


def test_a_schedule_shorter_than_the_run_warns_once(vector_driver):
    driver = vector_driver("classic", "CartPole-v1", num_envs=2, seed=0)
    agent = PPOAgent(ppo_config(anneal_steps=40, discrete={"rollout": 16}), driver.obs_space, driver.act_space, 2, 0)
    with pytest.warns(UserWarning, match="set agent.anneal_steps to the run's budget") as caught:
        metrics = driver.run(agent, 4 * 16 + 1)
    assert len(caught) == 1
    assert [m["learning_rate"] for m in metrics][-1] == 0.0 and metrics[0]["learning_rate"] == 2.5e-4
