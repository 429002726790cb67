"""Speed figures of the Dreamer agent for `python -m harness.bench`.

Each case builds the agent for a task's observation and action spaces (DMC cartpole balance: 5 floats
and one bounded action; Crafter: a 64x64 RGB image and 17 actions), fills the replay with random
steps, and times whole train updates at batch 16 x 64 (median after compilation) and env-batched
policy steps. Each case runs in its own process; peak memory is that process's maximum resident set
size (compilation included). `python -m agents.dreamer.bench [quick]` prints the table;
`python -m agents.dreamer.bench case crafter 1m 10` runs one case.

The loop cases run DreamerV3 through the whole loop at the suite's settings (agent_suite/dreamerv3_<suite>.yaml),
as a user's run does: the figure is agent steps/s once it trains, from the loop's metrics lines after the
first one with updates (that one holds the train step's compilation), so the steps before training starts
and the compilation are left out. harness/speeds.yaml records these figures for `--plan`'s estimates.
`python -m agents.dreamer.bench loop classic CartPole-v1 3000` runs one.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np
import yaml

from agents.dreamer.agent import DreamerAgent
from harness.worker import worker_environment

CONFIG = Path(__file__).resolve().parents[2] / "harness" / "config" / "agent" / "dreamerv3.yaml"

TASKS = {
    "dmc_cartpole": (
        gym.spaces.Dict({
            "position": gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
            "velocity": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
        }),
        gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
    ),
    "crafter": (
        gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)}),
        gym.spaces.Discrete(17),
    ),
}


def make_agent(task: str, size: str, num_envs: int = 1, **overrides: Any) -> DreamerAgent:
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg.update(size=size, **overrides)
    obs_space, act_space = TASKS[task]
    return DreamerAgent(cfg, obs_space, act_space, num_envs, seed=0)


def random_step(agent: DreamerAgent, obs_space: gym.spaces.Dict, rng: np.random.Generator, t: int) -> dict:
    n = agent.num_envs
    obs = {}
    for key, space in obs_space.spaces.items():
        if space.dtype == np.uint8:
            obs[key] = rng.integers(0, 256, (n, *space.shape), dtype=np.uint8)
        else:
            obs[key] = rng.normal(size=(n, *space.shape)).astype(np.float32)
    obs["reward"] = rng.normal(size=n).astype(np.float32)
    obs["is_first"] = np.full(n, t % 500 == 0)
    obs["is_last"] = np.full(n, t % 500 == 499)
    obs["is_terminal"] = np.zeros(n, bool)
    return obs


def fill(agent: DreamerAgent, task: str, steps: int) -> float:
    """Act and observe `steps` random observations; returns the median policy step in seconds."""
    obs_space = TASKS[task][0]
    rng, state, times = np.random.default_rng(0), None, []
    for t in range(steps):
        obs = random_step(agent, obs_space, rng, t)
        start = time.perf_counter()
        action, state = agent.act(obs, state, "train")
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
        agent.observe({**obs, "action": action})
    return float(np.median(times[5:]))


def time_updates(agent: DreamerAgent, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of one train update (batch sampling included), after one compiling
    update. CPU seconds count every thread of this process; on a shared machine they show the work
    done, while wall seconds also show the waiting for cores."""
    times = []
    for _ in range(repeats + 1):
        start, cpu = time.perf_counter(), time.process_time()
        batch, envs, starts = agent._sample()
        metrics, latents = agent._start_update(batch)
        agent.replay.write_latents(envs, starts, jax.tree.map(np.asarray, latents))
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, cpu = np.median(times[1:], axis=0)
    return float(wall), float(cpu)


def case(task: str, size: str, repeats: int) -> list[dict]:
    agent = make_agent(task, size)
    policy = fill(agent, task, 200)
    update, cpu = time_updates(agent, repeats)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    name = f"dreamerv3 {size} {task}"
    notes = (f"batch 16x64, float32, {jax.devices()[0].device_kind} x{os.cpu_count()}, median of {repeats} "
             f"after compilation, load average {os.getloadavg()[0]:.1f}")
    return [
        {"name": f"{name} update", "value": update, "unit": "s/update", "notes": notes},
        {"name": f"{name} update CPU time", "value": cpu, "unit": "cpu-s/update", "notes": "all threads"},
        {"name": f"{name} updates/s", "value": 1.0 / update, "unit": "updates/s", "notes": notes},
        {"name": f"{name} policy step", "value": policy * 1e3, "unit": "ms", "notes": "1 env, median of 195"},
        {"name": f"{name} policy steps/s", "value": 1.0 / policy, "unit": "steps/s", "notes": "1 env"},
        {"name": f"{name} peak memory", "value": peak_gb, "unit": "GB", "notes": "process max RSS so far"},
    ]


LOOP_CASES = [("classic", "CartPole-v1", 1_500, 3_000)]  # suite, task, agent steps (quick, full)


def training_steps_per_second(metrics: list[dict[str, Any]]) -> tuple[float, int]:
    """Agent steps/s over the metrics lines after the first with updates, and the steps they span."""
    first = next(i for i, line in enumerate(metrics) if "train/updates" in line)
    steps = seconds = 0.0
    for before, line in zip(metrics[first:], metrics[first + 1:]):
        delta = line["agent_step"] - before["agent_step"]
        steps, seconds = steps + delta, seconds + delta / line["fps/env"]
    if not steps:
        raise RuntimeError("no metrics line after the first update: run more steps")
    return steps / seconds, int(steps)


def loop_case(suite: str, task: str, steps: int) -> dict[str, Any]:
    """DreamerV3 through the loop at the suite's settings, no evaluation and no checkpoints in between."""
    from harness import loop
    from harness.plan import compose, make_plan
    from harness.rundir import RunDir
    from harness.run import prepare

    with tempfile.TemporaryDirectory() as root:
        cfg = compose([f"suite={suite}", "agent=dreamerv3", f"task={task}", f"steps={steps}", f"root={root}",
                       "suite.protocol.eval_every=0", "suite.protocol.final_eval_episodes=0", "run.log_every=10",
                       "run.checkpoint_every=1e9"])
        (spec,) = make_plan(cfg)
        prepare(spec, "new")
        run = RunDir(spec.run_dir)
        loop.train(run, threading.Event())
        metrics = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    rate, measured = training_steps_per_second(metrics)
    agent = spec.config["agent"]
    return {"name": f"dreamerv3 {suite}/{task} through the loop", "value": rate, "unit": "agent steps/s",
            "notes": f"size {agent['size']}, {agent['envs']} envs, train ratio {agent['train_ratio']}, "
                     f"{jax.devices()[0].device_kind} x{os.cpu_count()}; over the {measured} agent steps after the "
                     f"first update, load average {os.getloadavg()[0]:.1f}"}


def figures(quick: bool) -> list[dict]:
    """Each case in its own process, so peak memory and compilation caches are the case's own."""
    repeats = 3 if quick else 10
    cases = [("dmc_cartpole", "1m")] if quick else [("dmc_cartpole", "1m"), ("dmc_cartpole", "12m"), ("crafter", "1m")]
    rows = []
    for task, size in cases:
        out = subprocess.run(
            [sys.executable, "-m", "agents.dreamer.bench", "case", task, size, str(repeats)],
            capture_output=True, text=True, check=True, env=worker_environment(os.environ),  # as the harness runs it
        ).stdout
        rows += json.loads(out.strip().splitlines()[-1])
    for suite, task, quick_steps, full_steps in LOOP_CASES:
        steps = quick_steps if quick else full_steps
        out = subprocess.run(
            [sys.executable, "-m", "agents.dreamer.bench", "loop", suite, task, str(steps)],
            capture_output=True, text=True, check=True, env=worker_environment(os.environ),
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "case":
        print(json.dumps(case(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif len(sys.argv) == 5 and sys.argv[1] == "loop":
        print(json.dumps(loop_case(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        for row in figures(quick=sys.argv[1:] == ["quick"]):
            print(f"{row['name']:45s} {row['value']:10.4f} {row['unit']:12s} {row['notes']}")
