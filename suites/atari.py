"""Atari through the ALE, with the preprocessing of the DreamerV3 code (danijar/dreamerv3 @ e3f0224).

One `step` repeats the action for `action_repeat` emulator frames, sums the rewards, and returns the
element-wise maximum of the last two frames' RGB screens, resized (Pillow bilinear as the 2024 code, or
OpenCV INTER_AREA as the 2023 code) and optionally turned into luminance gray. Every reset plays
0..`noops` NOOP frames. Sticky actions are the ALE's `repeat_action_probability`. Life loss is ignored
and rewards are not clipped. Game over is `terminated`; reaching `episode_cap` frames (counted from
the end of the no-ops, as the official code does) is `truncated`. The official code marks the frame
cap as terminal too; here it is a truncation, as gymnasium defines it.

We drive `ale_py.ALEInterface` directly rather than gymnasium's `AtariEnv`: that env copies the
screen after every frame, which a repeat of 4 would throw away three times out of four.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from suites.base import Suite
from suites.wrappers import env_seed, image_space

ACTION_SETS = ("minimal", "all")
RESIZERS = ("pillow", "area")
LUMINANCE = np.array([0.299, 0.587, 1 - (0.299 + 0.587)])  # float64: the same truncations as the official code
NOOP = 0  # ale_py.Action.NOOP


def make_env(suite: Suite, task: str, seed: int, mode: str) -> gym.Env:
    return AtariEnv(
        task,
        seed=env_seed(seed, mode),
        repeat=suite.protocol.action_repeat,
        episode_cap=suite.protocol.episode_cap,
        **suite.env,
    )


class AtariEnv(gym.Env):
    """One ALE game; see the module docstring for what a step does."""

    def __init__(
        self,
        game: str,
        seed: int,
        repeat: int = 4,
        episode_cap: int | None = 108_000,
        size: tuple[int, int] = (64, 64),
        gray: bool = False,
        sticky: float = 0.0,
        noops: int = 30,
        actions: str = "minimal",
        resize: str = "pillow",
    ) -> None:
        import ale_py

        if actions not in ACTION_SETS:
            raise ValueError(f"unknown action set '{actions}'; valid: {', '.join(ACTION_SETS)}")
        if resize not in RESIZERS:
            raise ValueError(f"unknown resize '{resize}'; valid: {', '.join(RESIZERS)}")
        self._repeat = repeat
        self._cap = episode_cap
        self._size = (int(size[0]), int(size[1]))  # (height, width)
        self._gray = gray
        self._noops = noops
        self._resize = resize
        self._rom = ale_py.roms.get_rom_path(game)
        if self._rom is None:
            raise ValueError(f"no ALE ROM named '{game}'")
        self._ale = ale_py.ALEInterface()
        self._ale.setLoggerMode(ale_py.LoggerMode.Error)
        self._ale.setFloat("repeat_action_probability", float(sticky))
        self._seed(seed)
        legal = self._ale.getMinimalActionSet() if actions == "minimal" else self._ale.getLegalActionSet()
        self._actions = list(legal)
        height, width = self._ale.getScreenDims()
        self._screens = [np.zeros((height, width, 3), np.uint8) for _ in range(2)]
        self._pooled = np.zeros((height, width, 3), np.uint8)
        self._frames = 0
        self.observation_space = gym.spaces.Dict({"image": image_space(*self._size, 1 if gray else 3)})
        self.action_space = gym.spaces.Discrete(len(self._actions))

    def _seed(self, seed: int) -> None:
        """Seed the no-op draws and the ALE (sticky actions); the ALE reads its seed when loading a ROM."""
        self._np_random, _ = gym.utils.seeding.np_random(seed)
        self._ale.setInt("random_seed", int(self._np_random.integers(2**31)))
        self._ale.loadROM(self._rom)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:
            self._seed(seed)
        self._ale.reset_game()
        noops = int(self.np_random.integers(self._noops + 1))
        for _ in range(noops):
            self._ale.act(NOOP)
            if self._ale.game_over():
                self._ale.reset_game()
        self._frames = 0
        self._ale.getScreenRGB(self._screens[0])
        self._screens[1][:] = self._screens[0]
        return self._observe(), {"noops": noops}

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        ale_action = self._actions[action]
        reward = 0.0
        game_over = capped = False
        for i in range(self._repeat):
            reward += self._ale.act(ale_action)
            self._frames += 1
            game_over = self._ale.game_over()
            capped = self._cap is not None and self._frames >= self._cap
            if i >= self._repeat - 2 or game_over or capped:
                self._screens.reverse()  # the older screen slot receives the newest frame
                self._ale.getScreenRGB(self._screens[0])
            if game_over or capped:
                break
        return self._observe(), reward, game_over, capped and not game_over, {}

    def _observe(self) -> dict[str, np.ndarray]:
        pooled = np.maximum(self._screens[0], self._screens[1], out=self._pooled)
        return {"image": process_screen(pooled, self._size, self._gray, self._resize)}


def process_screen(screen: np.ndarray, size: tuple[int, int], gray: bool, resize: str) -> np.ndarray:
    """Resize an RGB screen to `size` (height, width), then optionally to luminance gray."""
    height, width = size
    if resize == "pillow":
        from PIL import Image

        image = np.array(Image.fromarray(screen).resize((width, height), Image.BILINEAR))  # writable
    else:
        import cv2

        image = cv2.resize(screen, (width, height), interpolation=cv2.INTER_AREA)
    if gray:  # luminance truncated to uint8, as the official code computes it
        image = (image @ LUMINANCE).astype(np.uint8)[:, :, None]
    return image
