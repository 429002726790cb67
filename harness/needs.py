"""What each job of a plan will need, for `python -m harness.run ... --plan`: its wall time at the speeds
measured in harness/speeds.yaml and, for Dreamer, the replay's bytes per agent step, its peak RAM and disk,
the size of one checkpoint, and a warning where the memory a job gets cannot hold its replay.

The runs of one (suite, agent, variant) share a block of lines, one block per image shape among its tasks;
where the tasks' vector observations or action sizes differ, the block gives the largest task's figures.
The spaces come from one env per task (construction only, no steps: about 0.1 s per Atari game); an env that
cannot be built makes its jobs' needs unknown, not the plan fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml
from omegaconf import DictConfig, OmegaConf

from harness.launch import format_duration
from harness.plan import ConfigError, RunSpec
from suites.base import Suite

SPEEDS = Path(__file__).with_name("speeds.yaml")  # measured agent steps/s per agent, device and suite
DREAMER = "agents.dreamer.agent:DreamerAgent"  # the agent whose replay and checkpoint this module sizes


def device(spec: RunSpec, cfg: DictConfig) -> str:
    """'gpu' where the SLURM launcher gives the run a GPU, else 'cpu'."""
    gpus = cfg.cluster.get("gpus")
    gpus = (spec.config["agent"].get("slurm") or {}).get("gpus", 0) if gpus is None else gpus
    return "gpu" if cfg.launcher.name == "slurm" and gpus else "cpu"


def speed(spec: RunSpec, cfg: DictConfig, speeds: dict[str, Any]) -> float | None:
    """Agent steps/s measured for the run's agent, device and suite (harness/speeds.yaml), or None."""
    return speeds.get(spec.agent, {}).get(device(spec, cfg), {}).get(spec.suite)


def format_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:,.0f} B"


def physical_memory() -> int:
    """This machine's memory in bytes (the local launcher's jobs share it)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_per_job(cfg: DictConfig, agent: dict[str, Any], jobs: int) -> tuple[int, str]:
    """The memory one job gets (bytes), and a phrase saying where that figure comes from."""
    if cfg.launcher.name == "slurm":
        from harness.slurm import RESOURCE_DEFAULTS, resources

        mem_gb = resources({"cluster": OmegaConf.to_container(cfg.cluster, resolve=True), "agent": agent})["mem_gb"]
        source = ("cluster.mem_gb" if cfg.cluster.get("mem_gb") is not None
                  else "cluster.mem_gb null: the agent's default agent.slurm.mem_gb"
                  if (agent.get("slurm") or {}).get("mem_gb") is not None
                  else f"cluster.mem_gb and agent.slurm.mem_gb null: the launcher's {RESOURCE_DEFAULTS['mem_gb']}")
        return int(mem_gb * 2**30), f"the {mem_gb:g} GiB SLURM gives a run ({source})"  # sbatch --mem in MiB
    total = physical_memory()
    parallel = min(int(cfg.workers), jobs)
    if parallel == 1:
        return total, f"this machine's {format_bytes(total)}"
    return total // parallel, (f"this machine's {format_bytes(total)} shared by {parallel} jobs at a time "
                               f"(workers={cfg.workers}), {format_bytes(total // parallel)} each")


_SPACES: dict[tuple[str, str], tuple[gym.spaces.Dict, gym.Space] | str] = {}


def spaces(suite_config: dict[str, Any], task: str) -> tuple[gym.spaces.Dict, gym.Space] | str:
    """The task's observation and action spaces, or why its env could not be built."""
    key = (json.dumps(suite_config, sort_keys=True), task)
    if key not in _SPACES:
        try:
            env = Suite.from_config(suite_config).make_env(task, seed=0)
            _SPACES[key] = (env.observation_space, env.action_space)
            env.close()
        except Exception as error:  # a missing ROM or renderer must not stop the plan
            _SPACES[key] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return _SPACES[key]


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _names(tasks: list[str], suite_tasks: int) -> str:
    if len(tasks) == suite_tasks and suite_tasks > 4:
        return f"all {suite_tasks} tasks"
    return ", ".join(tasks) if len(tasks) <= 4 else f"{', '.join(tasks[:3])} and {len(tasks) - 3} more"


def _images(obs_space: gym.spaces.Dict) -> tuple:
    """The image keys' shapes: what makes tasks' replays differ by more than a few vector entries."""
    return tuple((k, v.shape, str(v.dtype)) for k, v in obs_space.spaces.items() if len(v.shape) == 3)


def dreamer_lines(specs: list[RunSpec], cfg: DictConfig, speed: float | None, jobs: int) -> list[str]:
    """The lines of one (suite, agent, variant), a block per group of tasks with the same image shapes."""
    from agents.dreamer.footprint import footprint

    first = specs[0]
    agent, tasks = first.config["agent"], list(dict.fromkeys(s.task for s in specs))
    title = f"{first.agent} on {first.suite}" + (f" [{first.variant}]" if first.variant else "")
    groups: dict[Any, list[tuple[str, Any]]] = {}  # image shapes, or why the env failed -> (task, footprint)
    for task in tasks:
        found = spaces(first.config["suite"], task)
        if isinstance(found, str):
            groups.setdefault(found, []).append((task, found))
        else:
            try:
                groups.setdefault(_images(found[0]), []).append((task, footprint(agent, *found)))
            except ValueError as error:  # the agent cannot be built on this task's spaces: the run would fail
                raise ConfigError(f"agent={first.agent} cannot run {first.suite} task {task}: {error}") from None
    limit = memory_per_job(cfg, agent, jobs)
    lines = []
    for group in groups.values():
        names = [task for task, _ in group]
        head = (f"needs of {title}, {_names(names, len(first.config['suite']['tasks']))} "
                f"({_plural(sum(s.task in names for s in specs), 'run')}), per run:")
        if isinstance(group[0][1], str):
            lines.append(f"{head} unknown, the env could not be built ({group[0][1]})")
        else:
            lines += [head, *_block([fp for _, fp in group], agent, first.budget, speed,
                                    first.config["run"]["checkpoint_every"], limit)]
    return lines


def _block(footprints: list[Any], agent: dict[str, Any], budget: int, speed: float | None,
           checkpoint_every: float, limit: tuple[int, str]) -> list[str]:
    """Replay, RAM and disk, checkpoint, time and warning of one group of tasks; where their vector
    observations or actions differ (a few bytes per step), of the largest."""
    from agents.dreamer.footprint import replay_needs

    fp = max(footprints, key=lambda f: (f.step_bytes, f.state_bytes))
    low, envs = min(f.step_bytes for f in footprints), int(agent["envs"])
    per_step = (f"{low:,}-{fp.step_bytes:,} B per agent step by task (figures below for the largest)"
                if low < fp.step_bytes else f"{fp.step_bytes:,} B per agent step")
    replay = replay_needs(agent, fp, budget)
    disk = replay.store == "disk"
    collected = (f"what {checkpoint_every:g} s (run.checkpoint_every) collect at {speed:g} agent steps/s, "
                 f"{format_bytes(speed * checkpoint_every * replay.checkpoint_bytes_per_step)}" if speed else
                 f"what run.checkpoint_every={checkpoint_every:g} s collect ({replay.checkpoint_bytes_per_step:,} B "
                 "per agent step)")
    lines = [
        f"  replay: {per_step}, of which {fp.latent_bytes:,} B the latents deter and stoch; {replay.steps:,} steps "
        f"at its largest (capacity {int(agent['replay']['capacity']):,}, budget {budget:,}; chunks of "
        f"{replay.chunk:,} steps x {_plural(envs, 'env stream')}, {format_bytes(replay.chunk_bytes)} each)",
        f"  replay RAM: {format_bytes(replay.ram)} at its peak (store={replay.store}"
        + ("; the open chunk, the page cache not counted" if disk else "") + f"); disk: {format_bytes(replay.disk)}"
        + (" (with a frozen copy of the latents for the checkpoints)" if disk else ""),
        f"  checkpoint: {format_bytes(fp.state_bytes)} of parameters ({fp.params / 1e6:.3g}M, "
        f"{format_bytes(fp.param_bytes)}) and optimiser state, plus the replay's new data: at most one chunk "
        f"({format_bytes(replay.chunk_bytes)}) and {collected}",
    ]
    if speed:
        lines.append(f"  time: {format_duration(budget / speed)} per run at {speed:g} agent steps/s "
                     "(harness/speeds.yaml)")
    memory, source = limit
    if replay.ram > memory:
        # at capacity the replay holds ceil(capacity / chunk) chunks per stream and the one just opened
        fits = max(0, memory // replay.chunk_bytes - 1) * replay.chunk * envs
        advice = (f"agent.replay.store=disk (RAM: one chunk, {format_bytes(replay.chunk_bytes)}) or an "
                  f"agent.replay.capacity of at most {fits:,} (the most that fits)" if not disk
                  else "a smaller agent.replay.chunk")
        lines.append(f"  WARNING: the replay needs {format_bytes(replay.ram)} of RAM, more than {source}: use {advice}")
    return lines


def needs_lines(specs: list[RunSpec], cfg: DictConfig) -> list[str]:
    """Per (suite, agent, variant) of Dreamer jobs: replay, checkpoint, time and memory warnings."""
    speeds = yaml.safe_load(SPEEDS.read_text())
    by_kind: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        if spec.config["agent"].get("factory") == DREAMER:
            by_kind.setdefault((spec.suite, spec.agent, spec.variant), []).append(spec)
    lines = []
    for group in by_kind.values():
        lines += dreamer_lines(group, cfg, speed(group[0], cfg, speeds), len(specs))
    return lines
