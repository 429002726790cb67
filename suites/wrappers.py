"""Small helpers shared by the suite factories."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

MODES = ("train", "eval")


def env_seed(seed: int, mode: str) -> int:
    """The seed of the `mode` env of run `seed`: train and eval envs see different episodes."""
    if mode not in MODES:
        raise ValueError(f"unknown env mode '{mode}'; valid modes: {', '.join(MODES)}")
    return int(np.random.SeedSequence([seed, MODES.index(mode)]).generate_state(1)[0])


def image_space(height: int, width: int, channels: int) -> gym.spaces.Box:
    return gym.spaces.Box(0, 255, (height, width, channels), np.uint8)
