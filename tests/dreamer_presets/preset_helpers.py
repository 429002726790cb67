"""Preset configs, tiny learners and random batches for the preset tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from omegaconf import OmegaConf

from agents.dreamer import config as dreamer_config
from agents.dreamer.learner import Learner
from harness.plan import compose

PRESETS = ("dreamerv1", "dreamerv2", "dreamerv3_2023")
OBS_SPACE = gym.spaces.Dict({"state": gym.spaces.Box(-1.0, 1.0, (4,), np.float32)})
DISCRETE, CONTINUOUS = gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def preset_config(agent: str, suite: str = "classic", **overrides: Any) -> dict[str, Any]:
    """The agent section of a run config as `python -m harness.run suite=... agent=...` composes it."""
    args = [f"suite={suite}", f"agent={agent}"] + [f"agent.{k}={v}" for k, v in overrides.items()]
    return OmegaConf.to_container(compose(args).agent)


def tiny(agent: str, **overrides: Any) -> dict[str, Any]:
    """A preset at a few units per layer, float32, resolved as the agent resolves it."""
    size = {"units": 16, "depth": 4, "rssm.deter": 16, "rssm.hidden": 16, "compute_dtype": "float32",
            "imag_horizon": 3}
    return dreamer_config.resolve(preset_config(agent, **{**size, **overrides}))


def batch(learner: Learner, cfg: dict[str, Any], B: int = 2, T: int = 6, seed: int = 0) -> dict:
    """A random replay batch of B sequences of T + 1 steps (the first is the context step)."""
    rng = np.random.default_rng(seed)
    A = learner.policy.act_dim
    return {
        "state": rng.normal(size=(B, T + 1, 4)).astype(np.float32),
        "reward": rng.normal(size=(B, T + 1)).astype(np.float32),
        "is_first": np.zeros((B, T + 1), bool),
        "is_last": np.zeros((B, T + 1), bool),
        "is_terminal": np.zeros((B, T + 1), bool),
        "action": np.eye(A, dtype=np.float32)[rng.integers(0, A, (B, T + 1))],
        "deter": np.zeros((B, cfg["rssm"]["deter"]), np.float32),
        "stoch": np.zeros((B, learner.rssm.latent.flat_dim), np.float32),
    }

