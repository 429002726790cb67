"""A minimal stand-in for the harness loop over gymnasium's vector envs, in the agents/base.py convention.

Gymnasium's NEXT_STEP autoreset is the embodied convention: the action given after an episode's last
step is ignored and the call returns the next episode's first observation with reward 0.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest


class VectorDriver:
    def __init__(self, task: str, num_envs: int, seed: int) -> None:
        self.envs = gym.make_vec(task, num_envs, vectorization_mode="sync")
        self.num_envs = num_envs
        space = self.envs.single_observation_space
        self.obs_space = gym.spaces.Dict({"state": gym.spaces.Box(space.low, space.high, space.shape, np.float32)})
        self.act_space = self.envs.single_action_space
        raw, _ = self.envs.reset(seed=seed)
        no = np.zeros(num_envs, bool)
        self.obs = self._step_dict(raw, np.zeros(num_envs), np.ones(num_envs, bool), no, no)
        self.state = None
        self.returns = np.zeros(num_envs)
        self.scores: list[float] = []
        self.last_action: np.ndarray | None = None

    def _step_dict(self, raw, reward, first, terminated, truncated) -> dict[str, np.ndarray]:
        return {
            "state": raw.astype(np.float32),
            "reward": reward.astype(np.float32),
            "is_first": first,
            "is_last": terminated | truncated,
            "is_terminal": terminated,
        }

    def run(self, agent, steps: int) -> list[dict[str, float]]:
        """Advance `steps` loop steps (each one step of every env); returns the update metrics."""
        metrics = []
        for _ in range(steps):
            action, self.state = agent.act(self.obs, self.state, "train")
            agent.observe(self.obs | {"action": action})
            self.last_action = action
            if result := agent.update():
                metrics.append(result)
            done_before = self.obs["is_last"]
            raw, reward, terminated, truncated, _ = self.envs.step(action)
            self.obs = self._step_dict(raw, reward, done_before, terminated, truncated)
            self.returns = np.where(done_before, 0.0, self.returns + reward)
            self.scores += list(self.returns[self.obs["is_last"]])
        return metrics


@pytest.fixture
def vector_driver() -> type[VectorDriver]:
    return VectorDriver
