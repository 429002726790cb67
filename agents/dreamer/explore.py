"""Training-time action changes of DreamerV1/V2 (`agent.explore`), applied to the model's action format
(one-hot rows for discrete, [-1, 1] vectors for continuous actions) before the env sees them.

- `random_prefill`: while the replay holds fewer than `train_after` steps, act uniformly at random
  (V1/V2 prefill; V3 collects its first data with the untrained policy instead).
- `noise`: afterwards, V1's exploration: additive Gaussian noise with this std, clipped to [-1, 1], for
  continuous actions; for discrete actions a uniformly random action with this probability
  (epsilon-greedy, V1's option for discrete tasks).
"""

from __future__ import annotations

import numpy as np


class Exploration:
    def __init__(self, random_prefill: bool, noise: float, prefill_steps: int, discrete: bool, seed: int):
        self.random_prefill, self.noise = bool(random_prefill), float(noise)
        self.prefill_steps, self.discrete = int(prefill_steps), discrete
        self.rng = np.random.default_rng([seed, 1])

    def __call__(self, action: np.ndarray, agent_steps: int) -> np.ndarray:
        """The action to execute instead of the policy's `action` (B, A) after `agent_steps` stored steps."""
        if self.random_prefill and agent_steps < self.prefill_steps:
            return self._uniform(action)
        if not self.noise:
            return action
        if self.discrete:
            replace = self.rng.random(len(action)) < self.noise
            return np.where(replace[:, None], self._uniform(action), action)
        return np.clip(action + self.noise * self.rng.standard_normal(action.shape), -1.0, 1.0).astype(np.float32)

    def _uniform(self, action: np.ndarray) -> np.ndarray:
        batch, dims = action.shape
        if self.discrete:
            return np.eye(dims, dtype=np.float32)[self.rng.integers(0, dims, batch)]
        return self.rng.uniform(-1.0, 1.0, (batch, dims)).astype(np.float32)
