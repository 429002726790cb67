"""Turning the loop's Dict observations into network inputs: image frames and one float vector.

Keys are chosen by two regular expressions from the config (`cnn_keys` for uint8 HxWxC images,
`mlp_keys` for float vectors, concatenated in the space's order). Images can be converted to gray,
resized and stacked over time (the Nature DQN/PPO Atari preprocessing); the stack lives in the policy
state the loop keeps per mode, and restarts with copies of the first frame at `is_first`.
Vectors can be normalised with running statistics (CleanRL's NormalizeObservation, clipped to +-10).
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as cv2.COLOR_RGB2GRAY


class RunningMeanStd:
    """Running mean and variance over batches (Chan et al.), as gymnasium's normalisation wrappers."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        if len(batch) == 0:
            return
        mean, var, count = batch.mean(0), batch.var(0), len(batch)
        delta, total = mean - self.mean, self.count + count
        self.mean = self.mean + delta * count / total
        m2 = self.var * self.count + var * count + delta**2 * self.count * count / total
        self.var, self.count = m2 / total, total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]


def select_keys(obs_space: gym.spaces.Dict, cnn_keys: str, mlp_keys: str) -> tuple[str | None, list[str]]:
    """The image key (at most one) and the vector keys the config's patterns select."""
    images, vectors = [], []
    for key, space in obs_space.spaces.items():
        is_image = space.dtype == np.uint8 and len(space.shape) == 3
        if is_image and re.fullmatch(cnn_keys, key):
            images.append(key)
        elif not is_image and np.issubdtype(space.dtype, np.floating) and re.fullmatch(mlp_keys, key):
            vectors.append(key)
    if len(images) > 1:
        raise ValueError(f"PPO takes at most one image; cnn_keys='{cnn_keys}' selects {images}")
    if not images and not vectors:
        raise ValueError(
            f"cnn_keys='{cnn_keys}' and mlp_keys='{mlp_keys}' select no observation key; "
            f"the env has {list(obs_space.spaces)}"
        )
    return (images[0] if images else None), vectors


class Observations:
    def __init__(self, config: dict[str, Any], obs_space: gym.spaces.Dict, device: torch.device) -> None:
        self.image_key, self.vector_keys = select_keys(obs_space, config["cnn_keys"], config["mlp_keys"])
        self.device = device
        self.vector_dim = sum(int(np.prod(obs_space[k].shape)) for k in self.vector_keys)
        self.normalise = config["obs_norm"]
        self.rms = RunningMeanStd((self.vector_dim,))
        self.image_shape: tuple[int, int, int] | None = None  # (C, H, W) the network sees
        if self.image_key is not None:
            height, width, channels = obs_space[self.image_key].shape
            self.gray = config["grayscale"] and channels == 3
            self.size = config["image_size"] or height
            if not config["image_size"] and height != width:
                raise ValueError(f"image_size=null needs square images, got {height}x{width}")
            self.frame_channels = 1 if self.gray else channels
            self.image_shape = (self.frame_channels * config["frame_stack"], self.size, self.size)

    def image(self, obs: dict[str, np.ndarray], stack: torch.Tensor | None) -> torch.Tensor:
        """Push the new frames into the stack (B, C*k, S, S) uint8 and return the new stack."""
        frames = torch.as_tensor(obs[self.image_key], device=self.device).permute(0, 3, 1, 2).float()
        if self.gray:
            frames = (frames * torch.tensor(GRAY, device=self.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if frames.shape[-1] != self.size:
            mode = "area" if frames.shape[-1] > self.size else "bilinear"
            frames = F.interpolate(frames, size=(self.size, self.size), mode=mode)
        frames = frames.round().clamp(0, 255).to(torch.uint8)
        repeats = self.image_shape[0] // self.frame_channels
        first = torch.as_tensor(obs["is_first"], device=self.device).view(-1, 1, 1, 1)
        restarted = frames.repeat(1, repeats, 1, 1)
        if stack is None:
            return restarted
        shifted = torch.cat([stack[:, self.frame_channels :], frames], 1)
        return torch.where(first, restarted, shifted)

    def vector(self, obs: dict[str, np.ndarray], update_stats: bool) -> torch.Tensor:
        batch = len(obs["is_first"])
        if not self.vector_keys:
            return torch.zeros((batch, 0), device=self.device)
        vector = np.concatenate([np.asarray(obs[k], np.float64).reshape(batch, -1) for k in self.vector_keys], 1)
        if self.normalise:
            if update_stats:
                self.rms.update(vector)
            vector = np.clip((vector - self.rms.mean) / np.sqrt(self.rms.var + 1e-8), -10, 10)
        return torch.as_tensor(vector, dtype=torch.float32, device=self.device)
