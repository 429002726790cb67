"""Replay (as the 2024 code's, danijar/dreamerv3 @ e3f0224): one time-ordered stream per env, FIFO at capacity,
uniform windows, and the
online queue that hands every new non-overlapping window to training once, first.

Each stored step holds the observation, the action taken there, the loop flags, and the policy's
latent state after observing it. A sampled window of `length` steps starts with a context step whose
latent starts the RSSM filter ("latent replay"); `write_latents` stores the freshly computed
posteriors of the other steps after each update. Arrays grow by doubling up to the capacity, so a
large capacity costs no memory until it is used.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import numpy as np


class Replay:
    def __init__(self, capacity: int, num_envs: int, length: int, online: bool, seed: int):
        self.num_envs, self.length, self.online = num_envs, length, online
        self.cap = max(length, int(capacity) // num_envs)  # steps per env stream
        self.data: dict[str, np.ndarray] = {}
        self.count = 0  # steps written per stream since the start
        self.next_window = 0  # first step of the next window to queue for online training
        self.queue: deque[tuple[int, int]] = deque()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return min(self.count, self.cap) * self.num_envs

    def add(self, step: dict[str, np.ndarray]) -> None:
        """Append one step of every env: each value has the leading axis num_envs."""
        if not self.data:
            size = min(self.cap, 1024)
            self.data = {k: np.zeros((self.num_envs, size, *v.shape[1:]), v.dtype) for k, v in step.items()}
        size = next(iter(self.data.values())).shape[1]
        if self.count >= size and size < self.cap:
            new = min(self.cap, 2 * size)
            for k, v in self.data.items():
                grown = np.zeros((self.num_envs, new, *v.shape[2:]), v.dtype)
                grown[:, :size] = v
                self.data[k] = grown
        pos = self.count % self.cap
        for k, v in step.items():
            self.data[k][:, pos] = v
        self.count += 1
        if self.online and self.count - self.next_window >= self.length:
            self.queue.extend((env, self.next_window) for env in range(self.num_envs))
            self.next_window += self.length

    def sample(self, batch: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """`batch` windows: (data with leaves (batch, length, ...), env index, first step of each)."""
        oldest = max(0, self.count - self.cap)
        envs, starts = [], []
        while self.queue and len(envs) < batch:
            env, start = self.queue.popleft()
            if start >= oldest:
                envs.append(env)
                starts.append(start)
        rest = batch - len(envs)
        envs = np.concatenate([np.asarray(envs, np.int64), self.rng.integers(0, self.num_envs, rest)])
        starts = np.concatenate(
            [np.asarray(starts, np.int64), self.rng.integers(oldest, self.count - self.length + 1, rest)]
        )
        pos = (starts[:, None] + np.arange(self.length)) % self.cap
        return {k: v[envs[:, None], pos] for k, v in self.data.items()}, envs, starts

    def write_latents(self, envs: np.ndarray, starts: np.ndarray, latents: dict[str, np.ndarray]) -> None:
        """Store posteriors (batch, length - 1, ...) for steps start+1.. of windows still in the buffer."""
        keep = starts + 1 >= self.count - self.cap
        pos = (starts[keep, None] + 1 + np.arange(self.length - 1)) % self.cap
        for k, v in latents.items():
            self.data[k][envs[keep, None], pos] = v[keep]

    def save(self, path: Path) -> None:
        n = min(self.count, self.cap)
        arrays = {f"data/{k}": v[:, :n] for k, v in self.data.items()}
        meta = {
            "count": self.count, "next_window": self.next_window, "queue": list(self.queue),
            "rng": self.rng.bit_generator.state,
        }
        np.savez_compressed(path / "replay.npz", **arrays)
        (path / "replay.json").write_text(json.dumps(meta))

    def load(self, path: Path) -> None:
        meta = json.loads((path / "replay.json").read_text())
        with np.load(path / "replay.npz") as f:
            stored = {k[len("data/"):]: f[k] for k in f.files}
        self.count, self.next_window = meta["count"], meta["next_window"]
        self.queue = deque(tuple(x) for x in meta["queue"])
        self.rng.bit_generator.state = meta["rng"]
        self.data = {}
        for k, v in stored.items():
            self.data[k] = np.zeros((self.num_envs, max(v.shape[1], min(self.cap, 1024)), *v.shape[2:]), v.dtype)
            self.data[k][:, : v.shape[1]] = v
