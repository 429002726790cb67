"""Gymnasium classic control (CartPole-v1, Acrobot-v1, Pendulum-v1) behind the suite env contract."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from suites.base import Suite


class DictObservation(gym.ObservationWrapper):
    """Expose the flat observation as `{"state": float32 vector}`, and Box actions in [-1, 1]."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(space.low, space.high, space.shape, np.float32)}
        )
        if isinstance(env.action_space, gym.spaces.Box):
            self._low, self._high = env.action_space.low, env.action_space.high
            self.action_space = gym.spaces.Box(-1.0, 1.0, env.action_space.shape, np.float32)
        else:
            self._low = None

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"state": np.asarray(observation, np.float32)}

    def step(self, action: Any):
        if self._low is not None:  # rescale [-1, 1] to the env's bounds
            action = self._low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self._high - self._low)
        return super().step(action)


def make_env(suite: Suite, task: str, seed: int, mode: str) -> gym.Env:
    max_steps = suite.protocol.episode_cap
    env = gym.make(task, max_episode_steps=max_steps) if max_steps else gym.make(task)
    env = DictObservation(env)
    env.action_space.seed(seed)
    return env
