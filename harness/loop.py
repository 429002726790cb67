"""The env-agent loop: one run, from its directory's config.yaml to done, preempted or failed.

The loop owns env steps, episodes, evaluation, logging and checkpoints; the agent owns learning
(agents/base.py). Steps follow the DreamerV3 `embodied` convention: gymnasium's NEXT_STEP autoreset
means the step after an episode's last one is a reset step (`is_first`, reward 0, action ignored);
reset steps are not env interactions and do not count towards the budget.

Counting: `agent_step` = env.step calls summed over envs (reset steps excluded); files log
`step` = agent_step * action_repeat (env frames), as the official code and the published scores do.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from harness import logs
from harness.rundir import RunDir
from suites.base import EXTRA_INFO_PREFIX, Suite, resolve

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2, signal.SIGINT)


class NonFiniteLoss(RuntimeError):
    """A training metric became NaN or inf: the run fails and keeps its last good checkpoint."""


def _make_quiet_env(make: Callable[[], gym.Env]) -> gym.Env:
    """Build an env in a worker process that leaves stop signals to the run's own process."""
    if multiprocessing.parent_process() is not None:  # AsyncVectorEnv also builds one env in the parent
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
    return make()


def make_vector_env(suite: Suite, task: str, mode: str, seeds: list[int], parallel: bool) -> gym.vector.VectorEnv:
    makers = [functools.partial(suite.make_env, task, seed, mode) for seed in seeds]
    autoreset = gym.vector.AutoresetMode.NEXT_STEP
    if parallel:
        makers = [functools.partial(_make_quiet_env, m) for m in makers]
        return gym.vector.AsyncVectorEnv(makers, context="forkserver", autoreset_mode=autoreset)
    return gym.vector.SyncVectorEnv(makers, autoreset_mode=autoreset)


def env_seeds(seed: int, mode: str, session: int, num_envs: int) -> list[int]:
    """Distinct, reproducible env seeds per run seed, mode and session (a resumed run gets new ones)."""
    sequence = np.random.SeedSequence([seed, {"train": 0, "eval": 1}[mode], session])
    return [int(s) for s in sequence.generate_state(num_envs)]


def episode_extras(info: dict[str, Any], index: int) -> dict[str, float]:
    return {k: float(v[index]) for k, v in info.items()
            if k.startswith(EXTRA_INFO_PREFIX) and info.get("_" + k, np.ones(index + 1, bool))[index]}


class Episodes:
    """Per-env running returns and lengths; turns finished episodes into scores.jsonl records."""

    def __init__(self, num_envs: int):
        self.score = np.zeros(num_envs, np.float64)
        self.length = np.zeros(num_envs, np.int64)

    def add(self, reward: np.ndarray, real: np.ndarray) -> None:
        self.score += np.where(real, reward, 0.0)
        self.length += real

    def finish(self, index: int, info: dict[str, Any], **fields: Any) -> dict[str, Any]:
        record = {**fields, "episode/score": float(self.score[index]),
                  "episode/length": int(self.length[index]), **episode_extras(info, index)}
        self.score[index], self.length[index] = 0.0, 0
        return record


def first_step(obs: dict[str, np.ndarray], num_envs: int) -> dict[str, np.ndarray]:
    flags = {"reward": np.zeros(num_envs, np.float32), "is_first": np.ones(num_envs, bool),
             "is_last": np.zeros(num_envs, bool), "is_terminal": np.zeros(num_envs, bool)}
    return {**obs, **flags}


def next_step(obs, reward, terminated, truncated, previous: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**obs, "reward": np.asarray(reward, np.float32), "is_first": previous["is_last"].copy(),
            "is_last": np.logical_or(terminated, truncated), "is_terminal": np.asarray(terminated, bool)}


def evaluate(agent: Any, envs: gym.vector.VectorEnv, episodes: int, seeds: list[int],
             stop: threading.Event) -> list[dict[str, Any]] | None:
    """Run `episodes` evaluation episodes split evenly over the envs; None if stopped midway."""
    num_envs = envs.num_envs
    quota = np.array([episodes // num_envs + (i < episodes % num_envs) for i in range(num_envs)])
    tracker, records, state = Episodes(num_envs), [], None
    obs, _ = envs.reset(seed=seeds)
    step = first_step(obs, num_envs)
    while (quota > 0).any():
        if stop.is_set():
            return None
        action, state = agent.act(step, state, "eval")
        obs, reward, terminated, truncated, info = envs.step(action)
        step = next_step(obs, reward, terminated, truncated, step)
        tracker.add(step["reward"], ~step["is_first"])
        for i in np.flatnonzero(step["is_last"]):
            record = tracker.finish(i, info)
            if quota[i] > 0:
                quota[i] -= 1
                records.append(record)
    return records


def train(run: RunDir, stop: threading.Event) -> str:
    """Run or resume the run in `run`; returns 'done' or 'preempted' (raises on errors)."""
    config = run.read_config()
    suite = Suite.from_config(config["suite"])
    protocol, task, seed = suite.protocol, config["task"], config["seed"]
    num_envs = config["agent"]["envs"]
    parallel = num_envs > 1 if config["run"]["parallel_envs"] == "auto" else bool(config["run"]["parallel_envs"])

    checkpoint, problems = run.find_checkpoint()
    for problem in problems:  # a damaged newest checkpoint: resume from the one before
        print(f"=== {problem}; resuming from {checkpoint.name if checkpoint else 'the start'}", flush=True)
    state = run.load_loop_state(checkpoint) if checkpoint else {
        "agent_step": 0, "episodes": 0, "next_eval": protocol.eval_every or math.inf, "eval_rounds": 0,
        "train_done": False, "session": 0, "log_sizes": {}}
    state["session"] += 1
    run.truncate_logs(state["log_sizes"])
    writer = logs.Writer(run, tensorboard=config["logger"]["tensorboard"],
                         wandb_config=config if config["logger"].get("wandb") else None)

    train_seeds = env_seeds(seed, "train", state["session"], num_envs)
    envs = make_vector_env(suite, task, "train", train_seeds, parallel)
    eval_envs: gym.vector.VectorEnv | None = None
    agent = resolve(config["agent"]["factory"])(
        config["agent"], envs.single_observation_space, envs.single_action_space, num_envs, seed, workdir=run.path)
    if checkpoint:
        agent.load(checkpoint / "agent")
    session = logs.Session(run, agent, state["agent_step"] * protocol.action_repeat)

    def save() -> None:
        writer.sync()
        state["log_sizes"] = run.log_sizes()

        def save_agent(directory: Path) -> None:
            (directory / "agent").mkdir()
            agent.save(directory / "agent")

        # meta.json first: a kill between the two must not leave this session's end_step behind the
        # checkpoint the next session resumes from
        session.update(state["agent_step"] * protocol.action_repeat)
        run.save_checkpoint(state["agent_step"], state, save_agent)
        run.update_status(step=state["agent_step"] * protocol.action_repeat, agent_step=state["agent_step"],
                          episodes=state["episodes"])

    def run_eval(episodes: int, final: bool) -> bool:
        nonlocal eval_envs
        if episodes == 0:
            return True
        seeds = env_seeds(seed, "eval", state["session"] * 1000 + state["eval_rounds"], num_envs)
        eval_envs = eval_envs or make_vector_env(suite, task, "eval", seeds, parallel)
        records = evaluate(agent, eval_envs, episodes, seeds, stop)
        if records is None:
            return False
        frames = state["agent_step"] * protocol.action_repeat
        writer.scores([{"step": frames, "agent_step": state["agent_step"], **r, "mode": "eval", "final": final}
                       for r in records])
        state["eval_rounds"] += 1
        return True

    try:
        obs, _ = envs.reset(seed=train_seeds)
        step, tracker, policy_state = first_step(obs, num_envs), Episodes(num_envs), None
        meter = logs.Meter(state["agent_step"])
        last_save = time.monotonic()
        # a second submission of the plan may have named its own job in status.json: this one writes the run
        own_job = {"slurm_job_id": logs.slurm_job_id()} if logs.slurm_job_id() else {}
        run.update_status(state="running", budget=protocol.budget_frames, budget_agent_steps=protocol.budget,
                          error=None, log=str(run.log), pid=os.getpid(), host=socket.gethostname(), **own_job)
        while not state["train_done"]:
            if stop.is_set():
                save()
                return "preempted"
            action, policy_state = agent.act(step, policy_state, "train")
            agent.observe({**step, "action": action})
            metrics = agent.update()
            if any(not math.isfinite(v) for v in metrics.values()):
                raise NonFiniteLoss(f"non-finite training metric at agent step {state['agent_step']}: "
                                    f"{ {k: v for k, v in metrics.items() if not math.isfinite(v)} }")
            meter.add_metrics(metrics)
            obs, reward, terminated, truncated, info = envs.step(action)
            step = next_step(obs, reward, terminated, truncated, step)
            real = ~step["is_first"]
            state["agent_step"] += int(real.sum())
            tracker.add(step["reward"], real)
            frames = state["agent_step"] * protocol.action_repeat
            finished = [tracker.finish(i, info, step=frames, agent_step=state["agent_step"], mode="train",
                                       final=False) for i in np.flatnonzero(step["is_last"])]
            if finished:
                state["episodes"] += len(finished)
                writer.scores(finished)
                meter.add_scores([r["episode/score"] for r in finished])
            state["train_done"] = state["agent_step"] >= protocol.budget
            if state["agent_step"] >= state["next_eval"] and not state["train_done"]:
                if not run_eval(protocol.eval_episodes, final=False):
                    continue  # stopped during evaluation: the next iteration saves and returns
                state["next_eval"] += protocol.eval_every
            if meter.due(config["run"]["log_every"]) or state["train_done"]:
                writer.metrics(meter.flush(state["agent_step"], protocol.action_repeat))
            if meter.status_due() or state["train_done"]:
                run.update_status(state="running", step=frames, agent_step=state["agent_step"],
                                  episodes=state["episodes"], last_score=meter.last_score,
                                  steps_per_second=meter.steps_per_second, **own_job)
            if time.monotonic() - last_save > config["run"]["checkpoint_every"] and not state["train_done"]:
                save()
                last_save = time.monotonic()
        if not state.get("final_eval_done"):
            save()  # the trained agent, before the final evaluation
            if not run_eval(protocol.final_eval_episodes, final=True):
                return "preempted"
            state["final_eval_done"] = True
            save()
        return "done"
    finally:
        writer.close()
        session.close(state["agent_step"] * protocol.action_repeat)
        envs.close()
        if eval_envs is not None:
            eval_envs.close()
