"""Env speed per suite: agent steps/s through the suite's env vs the raw environment underneath.

"Raw" does the same emulator/physics work for one agent step without our wrapper: Atari = the ALE
playing the action for 4 frames and copying the last screen (what gymnasium's `ALE/<Game>-v5` with
frameskip 4 returns); DMC = dm_control stepping twice (vision: plus dm_control's `physics.render`,
with the default render settings the official code uses and with the fast settings we use); Crafter =
`crafter.Env.step`. Wrapper overhead = extra time per agent step over raw. Resets are done but not
timed. The measurements of one suite alternate in rounds and each reports its median round, so a
machine shared with other work slows all of them alike.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from suites.base import Suite

PROCESSING = "screen resize alone"
SUITE_DIR = Path(__file__).resolve().parents[1] / "harness" / "config" / "suite"
Runner = Callable[[int], float]  # runs n agent steps, returns the seconds spent stepping


def load_suite(name: str) -> Suite:
    return Suite.from_config(yaml.safe_load((SUITE_DIR / f"{name}.yaml").read_text()))


def gym_runner(env: Any, seed: int = 0) -> Runner:
    """Random actions into a gymnasium env, timing `step` only."""
    env.reset(seed=seed)
    env.action_space.seed(seed)

    def run(steps: int) -> float:
        spent = 0.0
        for _ in range(steps):
            action = env.action_space.sample()
            start = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            spent += time.perf_counter() - start
            if terminated or truncated:
                env.reset()
        return spent

    return run


def ale_runner(game: str, sticky: float, actions: str) -> Runner:
    import ale_py

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.setFloat("repeat_action_probability", sticky)
    ale.loadROM(ale_py.roms.get_rom_path(game))
    legal = ale.getMinimalActionSet() if actions == "minimal" else ale.getLegalActionSet()
    height, width = ale.getScreenDims()
    screen, rng = np.zeros((height, width, 3), np.uint8), np.random.default_rng(0)

    def run(steps: int) -> float:
        spent = 0.0
        for _ in range(steps):
            action = legal[rng.integers(len(legal))]
            start = time.perf_counter()
            for _ in range(4):
                ale.act(action)
            ale.getScreenRGB(screen)
            spent += time.perf_counter() - start
            if ale.game_over():
                ale.reset_game()
        return spent

    return run


def screen_processing_runner(suite: Suite, game: str) -> Runner:
    """The Atari suite's resize (and gray) of one pooled screen, alone."""
    import ale_py

    from suites.atari import process_screen

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.loadROM(ale_py.roms.get_rom_path(game))
    for _ in range(200):
        ale.act(ale.getMinimalActionSet()[1])
    screen = ale.getScreenRGB()
    size, gray, resize = tuple(suite.env["size"]), suite.env["gray"], suite.env["resize"]

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            process_screen(screen, size, gray, resize)
        return time.perf_counter() - start

    return run


def gymnasium_preprocessing_runner(game: str) -> Runner:
    """gymnasium's own AtariPreprocessing at the atari26 settings, for comparison."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    name = "".join(part.capitalize() for part in game.split("_"))
    env = gym.make(f"ALE/{name}-v5", frameskip=1, repeat_action_probability=0.0)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=64,
                                          terminal_on_life_loss=False, grayscale_obs=False)
    return gym_runner(env)


def dm_control_runner(task: str, repeat: int, render: str | None) -> Runner:
    """dm_control itself; `render` None, 'default' (official settings) or 'fast' (256 shadows, no MSAA)."""
    from dm_control import suite

    from suites.dmc import choose_gl, split_task

    choose_gl()
    env = suite.load(*split_task(task), task_kwargs={"random": 0})
    if render == "fast":
        env.physics.model.vis.quality.shadowsize = 256
        env.physics.model.vis.quality.offsamples = 0
    spec, rng = env.action_spec(), np.random.default_rng(0)
    env.reset()

    def run(steps: int) -> float:
        spent = 0.0
        for _ in range(steps):
            action = rng.uniform(spec.minimum, spec.maximum)
            start = time.perf_counter()
            for _ in range(repeat):
                time_step = env.step(action)
            if render:
                env.physics.render(64, 64, camera_id=0)
            spent += time.perf_counter() - start
            if time_step.last():
                env.reset()
        return spent

    return run


def crafter_runner() -> Runner:
    import crafter

    env, rng = crafter.Env(size=(64, 64), reward=True, seed=0), np.random.default_rng(0)
    env.reset()

    def run(steps: int) -> float:
        spent = 0.0
        for _ in range(steps):
            action = int(rng.integers(17))
            start = time.perf_counter()
            _, _, done, _ = env.step(action)
            spent += time.perf_counter() - start
            if done:
                env.reset()
        return spent

    return run


def measure(runners: dict[str, Runner], steps: int, rounds: int) -> dict[str, float]:
    """Median agent steps/s per runner over alternating rounds (after one warm-up round)."""
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for round_ in range(rounds + 1):
        for name, run in runners.items():
            rate = steps / run(steps)
            if round_:
                rates[name].append(rate)
    return {name: statistics.median(values) for name, values in rates.items()}


def cases() -> list[tuple[str, str, Callable[[], dict[str, Runner]], int]]:
    """(suite, task, builder of its runners, steps per round at full length)."""
    def atari(suite_name: str, game: str) -> dict[str, Runner]:
        suite = load_suite(suite_name)
        runners = {"raw": ale_runner(game, suite.env["sticky"], suite.env["actions"]),
                   "suite": gym_runner(suite.make_env(game, 0, "train")),
                   PROCESSING: screen_processing_runner(suite, game)}
        if suite_name == "atari26":
            runners["gymnasium AtariPreprocessing"] = gymnasium_preprocessing_runner(game)
        return runners

    def dmc(suite_name: str, task: str) -> dict[str, Runner]:
        suite = load_suite(suite_name)
        env = suite.make_env(task, 0, "train")  # first: it chooses MUJOCO_GL
        if not suite.env["image"]:
            return {"raw": dm_control_runner(task, 2, None), "suite": gym_runner(env)}
        return {"raw": dm_control_runner(task, 2, "fast"), "suite": gym_runner(env),
                "raw, default render settings": dm_control_runner(task, 2, "default")}

    return [
        ("atari26", "pong", lambda: atari("atari26", "pong"), 5000),
        ("atari57", "pong", lambda: atari("atari57", "pong"), 5000),
        ("dmc_proprio", "walker_walk", lambda: dmc("dmc_proprio", "walker_walk"), 5000),
        ("dmc_vision", "walker_walk", lambda: dmc("dmc_vision", "walker_walk"), 300),
        ("crafter", "crafter_reward", lambda: {
            "raw": crafter_runner(), "suite": gym_runner(load_suite("crafter").make_env("crafter_reward", 0, "train"))},
         2000),  # a random player dies every ~200 steps and world generation (untimed) takes ~1 s
    ]


def figures(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for suite, task, build, steps in cases():
        rates = measure(build(), steps // 10 if quick else steps, rounds=3 if quick else 5)
        raw, ours = rates.pop("raw"), rates.pop("suite")
        overhead = (1 / ours - 1 / raw) * raw * 100  # extra time per step, % of raw
        rows.append({"name": f"{suite}/{task} raw env", "value": raw, "unit": "agent steps/s",
                     "notes": "one env, one process, random actions, resets not timed"})
        rows.append({"name": f"{suite}/{task} suite env", "value": ours, "unit": "agent steps/s",
                     "notes": f"wrapper overhead {overhead:+.0f}% of the raw step time"})
        if PROCESSING in rates:
            processing_us = 1e6 / rates.pop(PROCESSING)
            rest = (1 / ours - 1 / raw - processing_us / 1e6) * raw * 100
            rows.append({"name": f"{suite}/{task} screen resize per step", "value": processing_us, "unit": "us",
                         "notes": f"the paper's resize; the rest of the wrapper costs {rest:+.0f}% of raw"})
        for name, rate in rates.items():
            rows.append({"name": f"{suite}/{task} {name}", "value": rate, "unit": "agent steps/s",
                         "notes": f"suite env is {ours / rate:.2f}x this"})
    return rows

