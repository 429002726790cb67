"""A tiny agent for the harness: an epsilon-greedy bandit over discrete actions.

It keeps the mean reward that followed each action and mostly picks the best one. It ignores the
observation, so it learns little, but it uses every part of the Agent protocol (agents/base.py):

    python -m harness.run suite=classic task=CartPole-v1 agent=random \
        agent.factory=examples.tiny_agent:TinyAgent steps=2000      # from the repository root
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np


class TinyAgent:
    def __init__(self, config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space,
                 num_envs: int, seed: int, workdir: Path | None = None) -> None:
        if not isinstance(act_space, gym.spaces.Discrete):
            raise ValueError("TinyAgent needs discrete actions")
        self.num_envs = num_envs
        self.epsilon = float(config.get("epsilon", 0.1))
        self.rng = np.random.default_rng(seed)
        self.counts = np.zeros(act_space.n)
        self.sums = np.zeros(act_space.n)
        self.last_action = np.full(num_envs, -1)  # per env: the action whose reward arrives next

    def act(self, obs: dict[str, np.ndarray], state: Any, mode: str) -> tuple[np.ndarray, Any]:
        best = np.argmax(self.sums / np.maximum(self.counts, 1))
        explore = self.rng.random(self.num_envs) < (self.epsilon if mode == "train" else 0.0)
        action = np.where(explore, self.rng.integers(0, len(self.counts), self.num_envs), best)
        return action.astype(np.int64), state

    def observe(self, step: dict[str, np.ndarray]) -> None:
        # step t carries the reward for the action chosen at t - 1 (none on an episode's first step)
        for env in range(self.num_envs):
            if not step["is_first"][env] and self.last_action[env] >= 0:
                self.counts[self.last_action[env]] += 1
                self.sums[self.last_action[env]] += step["reward"][env]
        self.last_action = np.where(step["is_last"], -1, step["action"])

    def update(self) -> dict[str, float]:
        return {"best_mean_reward": float(np.max(self.sums / np.maximum(self.counts, 1)))}

    def save(self, path: Path) -> None:
        state = {"counts": self.counts.tolist(), "sums": self.sums.tolist(),
                 "last_action": self.last_action.tolist(), "rng": self.rng.bit_generator.state}
        (Path(path) / "tiny_agent.json").write_text(json.dumps(state))

    def load(self, path: Path) -> None:
        state = json.loads((Path(path) / "tiny_agent.json").read_text())
        self.counts, self.sums = np.array(state["counts"]), np.array(state["sums"])
        self.last_action = np.array(state["last_action"])
        self.rng.bit_generator.state = state["rng"]
