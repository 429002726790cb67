"""Crafter (`crafter_reward`) as the DreamerV3 code runs it (danijar/dreamerv3 @ e3f0224; the score of the
Crafter paper, arXiv:2109.06780).

`crafter.Env(size=(64, 64), reward=True)` behind the gymnasium API: 17 actions, 64x64 RGB, episodes
end on death (`terminated`) or after `episode_cap` steps (`truncated`). The last step of an episode
carries `log/achievement_<name>` for all 22 achievements: how often the episode unlocked each, the
counts of crafter's own `stats.jsonl`, from which the Crafter score is computed (success rate of an
achievement = share of training episodes with a count of at least 1).

`reset(seed=...)` reproduces the world. Trajectories of equal seeds can still part after a few hundred
steps: crafter 1.8.3 keeps creatures in sets and picks one to despawn by its position in the set,
which depends on memory addresses. That is upstream behaviour and left as the papers ran it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from suites.base import EXTRA_INFO_PREFIX, Suite
from suites.wrappers import env_seed, image_space

TASKS = {"crafter_reward": True}  # task -> whether the env pays crafter's reward


def make_env(suite: Suite, task: str, seed: int, mode: str) -> gym.Env:
    return CrafterEnv(seed=env_seed(seed, mode), reward=TASKS[task], episode_cap=suite.protocol.episode_cap,
                      **suite.env)


class CrafterEnv(gym.Env):
    """One Crafter world per episode; see the module docstring."""

    def __init__(self, seed: int, reward: bool = True, episode_cap: int | None = 10_000,
                 size: tuple[int, int] = (64, 64)) -> None:
        import crafter

        self._crafter = crafter
        self._settings = dict(size=(int(size[0]), int(size[1])), reward=reward, length=episode_cap)
        self._env = crafter.Env(**self._settings, seed=seed)
        self.observation_space = gym.spaces.Dict({"image": image_space(*self._settings["size"], 3)})
        self.action_space = gym.spaces.Discrete(self._env.action_space.n)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:  # crafter seeds each world from (seed, episode number): start over
            self._env = self._crafter.Env(**self._settings, seed=seed)
        return {"image": self._env.reset()}, {}

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        image, reward, done, info = self._env.step(int(action))
        terminated = done and info["discount"] == 0  # death; the length limit keeps discount 1
        extras = {}
        if done:
            extras = {f"{EXTRA_INFO_PREFIX}achievement_{name}": int(count)
                      for name, count in info["achievements"].items()}
        return {"image": image}, float(reward), terminated, done and not terminated, extras
