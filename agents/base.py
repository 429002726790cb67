"""The Agent protocol: what the loop asks of every agent (Dreamer, PPO, random).

The loop owns env steps, episodes, evaluation, logging and checkpoints; the agent owns learning.
All arrays are batched over the run's parallel envs (leading axis `num_envs`).

Observations given to `act` and `observe` are the env's Dict observation plus four loop keys:
  reward       float32 (B,)  reward received on arriving at this observation (0 on the first step)
  is_first     bool    (B,)  first observation of an episode (recurrent state must reset)
  is_last      bool    (B,)  last observation of an episode (the action chosen here is ignored)
  is_terminal  bool    (B,)  the episode ended by termination, not by a time limit
This is the DreamerV3 `embodied` convention: step t carries obs_t, reward_t, the flags of obs_t, and
(in `observe`) the action a_t the agent chose at obs_t. After `is_last` the next step is `is_first`.

Evaluation episodes run on a second set of `num_envs` envs, so every batch has B = num_envs.
`act(obs, state, mode)` returns actions (int64 (B,) for Discrete, float32 (B, A) for Box) and the next
policy state; `state` is None at the start and is kept by the loop separately for 'train' and 'eval'.
`observe(step)` receives every training step (obs keys + loop keys + `action`), never eval steps. Its
`action` is the one the env executed; an agent may store its own form of it instead (Dreamer keeps the
policy's unclipped sample, as the official driver does, from the `act` that preceded it).
`update()` is called once after every `observe`; the agent decides how many gradient updates that is
worth (train ratio, rollout length) and returns scalar metrics (empty dict when it did nothing).
`workdir` is a directory of the run the agent may keep files in while it runs (Dreamer's replay keeps its
chunks there); None where there is no run (tests, benchmarks).
`save(dir)` / `load(dir)` write and read everything needed to continue bit-for-bit where possible:
parameters, optimiser state, replay, counters, RNG. The loop makes the checkpoint atomic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

LOOP_KEYS = ("reward", "is_first", "is_last", "is_terminal")


class Agent(Protocol):
    def __init__(
        self,
        config: dict[str, Any],
        obs_space: gym.spaces.Dict,
        act_space: gym.Space,
        num_envs: int,
        seed: int,
        workdir: Path | None = None,
    ) -> None: ...

    def act(self, obs: dict[str, np.ndarray], state: Any, mode: str) -> tuple[np.ndarray, Any]: ...

    def observe(self, step: dict[str, np.ndarray]) -> None: ...

    def update(self) -> dict[str, float]: ...

    def save(self, path: Path) -> None: ...

    def load(self, path: Path) -> None: ...
