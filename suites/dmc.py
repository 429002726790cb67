"""DeepMind Control Suite tasks as the DreamerV3 code runs them (danijar/dreamerv3 @ e3f0224).

One `step` repeats the action for `action_repeat` control steps and sums the rewards. Actions live in
[-1, 1] and are mapped onto the task's bounds. Observations are the task's vectors as separate float32
keys named as dm_control names them (`proprio`), and/or a 64x64 RGB `image` from camera 0 (quadruped:
camera 2). The episode ends at the suite's own 1000-step limit, a time limit, so it is `truncated`;
`terminated` only when dm_control signals a zero discount (never for these tasks).

Rendering is headless: `MUJOCO_GL` is chosen before dm_control is imported (egl if it can make a
context, else osmesa; a value the user set is kept). Images are rendered with a 256-pixel shadow map
and no multisampling (the defaults, 2048-pixel shadows and 4x MSAA, cost four times more on a CPU
rasteriser) by `Camera`, which draws the same pixels as dm_control's `physics.render` at those
settings in about two thirds of the time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import gymnasium as gym
import numpy as np

from suites.base import Suite
from suites.wrappers import env_seed, image_space

CAMERAS = {"quadruped": 2}  # every other domain: camera 0
GL_PROBE = "from mujoco.{0} import GLContext\nc = GLContext(8, 8)\nc.make_current()\nc.free()"


def make_env(suite: Suite, task: str, seed: int, mode: str) -> gym.Env:
    return DMCEnv(
        task,
        seed=env_seed(seed, mode),
        repeat=suite.protocol.action_repeat,
        episode_cap=suite.protocol.episode_cap,
        **suite.env,
    )


def choose_gl() -> str:
    """Set MUJOCO_GL (unless the user did) to egl when it can make a context here, else osmesa."""
    if "MUJOCO_GL" not in os.environ:
        env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
        probe = subprocess.run([sys.executable, "-c", GL_PROBE.format("egl")], env=env, capture_output=True)
        os.environ["MUJOCO_GL"] = "egl" if probe.returncode == 0 else "osmesa"
    # llvmpipe (the CPU rasteriser) is fastest at 64x64 without its own threads; no effect on GPUs.
    os.environ.setdefault("LP_NUM_THREADS", "0")
    return os.environ["MUJOCO_GL"]


def split_task(task: str) -> tuple[str, str]:
    """'ball_in_cup_catch' -> ('ball_in_cup', 'catch'), using dm_control's own task list."""
    from dm_control import suite

    names = {f"{domain}_{name}": (domain, name) for domain, name in suite.ALL_TASKS}
    if task not in names:
        raise ValueError(f"unknown dm_control task '{task}'; valid: {', '.join(sorted(names))}")
    return names[task]


class DMCEnv(gym.Env):
    """One dm_control suite task; see the module docstring for what a step does."""

    def __init__(
        self,
        task: str,
        seed: int,
        repeat: int = 2,
        episode_cap: int | None = 1000,
        image: bool = True,
        proprio: bool = False,
        size: tuple[int, int] = (64, 64),
        camera: int | None = None,
    ) -> None:
        choose_gl()
        from dm_control import suite

        domain, name = split_task(task)
        self._env = suite.load(domain, name, task_kwargs={"random": seed})
        self._repeat = repeat
        self._cap = episode_cap
        self._proprio = proprio
        self._frames = 0
        spec = self._env.action_spec()
        unit = (spec.minimum == -1).all() and (spec.maximum == 1).all()  # true for every suite task
        self._low, self._scale = spec.minimum, None if unit else (spec.maximum - spec.minimum) / 2
        self._shapes = {key: value.shape or (1,) for key, value in self._env.observation_spec().items()}
        spaces: dict[str, gym.Space] = {}
        if proprio:
            for key, shape in self._shapes.items():
                spaces[key] = gym.spaces.Box(-np.inf, np.inf, shape, np.float32)
        self._camera = None
        if image:
            camera = CAMERAS.get(domain, 0) if camera is None else camera
            self._camera = Camera(self._env.physics, camera, int(size[0]), int(size[1]))
            spaces["image"] = image_space(int(size[0]), int(size[1]), 3)
        if not spaces:
            raise ValueError("a DMC env needs image: true or proprio: true")
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:
            self._env.task.random.seed(seed)
        time_step = self._env.reset()
        self._frames = 0
        return self._observe(time_step), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        action = np.minimum(np.maximum(action, -1.0), 1.0)  # np.clip costs more on tiny arrays
        if self._scale is not None:
            action = self._low + (action + 1.0) * self._scale
        reward = 0.0
        for _ in range(self._repeat):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0
            self._frames += 1
            capped = self._cap is not None and self._frames >= self._cap
            if time_step.last() or capped:
                break
        terminated = time_step.last() and time_step.discount == 0.0
        truncated = (time_step.last() or capped) and not terminated
        return self._observe(time_step), float(reward), bool(terminated), bool(truncated), {}

    def _observe(self, time_step: Any) -> dict[str, np.ndarray]:
        obs = {}
        if self._proprio:
            for key, value in time_step.observation.items():
                obs[key] = np.asarray(value, np.float32).reshape(self._shapes[key])
        if self._camera is not None:
            obs["image"] = self._camera.render()
        return obs

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    def __del__(self) -> None:
        self.close()


class Camera:
    """Offscreen rendering of one fixed camera with MuJoCo's own bindings.

    Unlike `mujoco.Renderer`, which frees its GL objects in whichever context is current (and so
    corrupts the images of another env in the same process when it is garbage collected), this
    makes its own context current before every use.
    """

    def __init__(self, physics: Any, camera: int, height: int, width: int) -> None:
        import mujoco

        self._mujoco = mujoco
        self._model, self._data = physics.model.ptr, physics.data.ptr
        self._model.vis.quality.shadowsize = 256  # both must be set before the GL context exists
        self._model.vis.quality.offsamples = 0
        self._gl = mujoco.GLContext(width, height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(self._model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(self._model, maxgeom=10_000)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = camera
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._pixels = np.empty((height, width, 3), np.uint8)

    def render(self) -> np.ndarray:
        mujoco = self._mujoco
        self._gl.make_current()
        mujoco.mjv_updateScene(self._model, self._data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._pixels, None, self._rect, self._context)
        return self._pixels[::-1].copy()  # OpenGL rows run bottom-up

    def close(self) -> None:
        if self._gl is not None:
            self._gl.make_current()
            self._context.free()
            self._gl.free()
            self._gl = None
