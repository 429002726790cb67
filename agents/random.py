"""The random agent: uniform actions, no learning. The floor of every table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np


class RandomAgent:
    def __init__(
        self, config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space, num_envs: int, seed: int,
        workdir: Path | None = None,
    ) -> None:
        self.act_space = act_space
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict[str, np.ndarray], state: Any, mode: str) -> tuple[np.ndarray, Any]:
        if isinstance(self.act_space, gym.spaces.Discrete):
            action = self.rng.integers(0, self.act_space.n, size=self.num_envs)
        else:
            shape = (self.num_envs, *self.act_space.shape)
            action = self.rng.uniform(self.act_space.low, self.act_space.high, shape).astype(np.float32)
        return action, state

    def observe(self, step: dict[str, np.ndarray]) -> None:
        pass

    def update(self) -> dict[str, float]:
        return {}

    def save(self, path: Path) -> None:
        (Path(path) / "random_agent.json").write_text(json.dumps(self.rng.bit_generator.state))

    def load(self, path: Path) -> None:
        self.rng.bit_generator.state = json.loads((Path(path) / "random_agent.json").read_text())
