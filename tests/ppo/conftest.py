"""The training half of the harness loop, in-process, for tests that watch the agent step by step.

Envs come from the real suites and the loop's own vector-env factory (gymnasium's NEXT_STEP
autoreset); steps are built by the loop's own `first_step` / `next_step`.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from harness.loop import first_step, make_vector_env, next_step
from harness.plan import CONFIG_DIR
from suites.base import Suite


class VectorDriver:
    def __init__(self, suite: str, task: str, num_envs: int, seed: int) -> None:
        config = Suite.from_config(yaml.safe_load((CONFIG_DIR / "suite" / f"{suite}.yaml").read_text()))
        seeds = [seed * 1000 + i for i in range(num_envs)]
        self.envs = make_vector_env(config, task, "train", seeds, parallel=False)
        self.obs_space, self.act_space = self.envs.single_observation_space, self.envs.single_action_space
        self.obs = first_step(self.envs.reset(seed=seeds)[0], num_envs)
        self.state = None
        self.returns = np.zeros(num_envs)
        self.scores: list[float] = []
        self.last_action: np.ndarray | None = None

    def run(self, agent, steps: int) -> list[dict[str, float]]:
        """Advance `steps` loop steps (each one step of every env); returns the update metrics."""
        metrics = []
        for _ in range(steps):
            action, self.state = agent.act(self.obs, self.state, "train")
            agent.observe(self.obs | {"action": action})
            self.last_action = action
            if result := agent.update():
                metrics.append(result)
            obs, reward, terminated, truncated, _ = self.envs.step(action)
            self.obs = next_step(obs, reward, terminated, truncated, self.obs)
            self.returns = np.where(self.obs["is_first"], 0.0, self.returns + reward)
            self.scores += list(self.returns[self.obs["is_last"]])
        return metrics


@pytest.fixture
def vector_driver() -> type[VectorDriver]:
    return VectorDriver
