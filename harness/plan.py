"""From the command line to a validated plan: one RunSpec per (task, seed).

`compose(args)` turns `key=value` arguments into the resolved Hydra config; `make_plan(cfg)` checks
every name and value and returns the jobs. Both raise ConfigError with a message meant for the user;
neither writes anything.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from suites.base import MissingDependency, Suite, require, resolve

CONFIG_DIR = Path(__file__).resolve().parent / "config"
CLUSTER_DIR = Path(__file__).resolve().parents[1] / "slurm" / "clusters"
GROUPS = {"suite": CONFIG_DIR / "suite", "agent": CONFIG_DIR / "agent",
          "launcher": CONFIG_DIR / "launcher", "cluster": CLUSTER_DIR}
RUN_KEYS = ("suite", "agent", "task", "seed", "run", "logger")  # what a run's config.yaml holds


class ConfigError(ValueError):
    """A bad command line: the message says which key and why, and what is valid."""


@dataclass(frozen=True)
class RunSpec:
    suite: str
    task: str
    agent: str
    seed: int
    run_dir: Path
    budget: int  # agent steps
    budget_frames: int
    config: dict[str, Any] = field(compare=False)  # the resolved run config, as in config.yaml
    variant: str | None = None  # the variant's directory name (harness/sweep.py); None: no variant

    @property
    def name(self) -> str:
        """suite/agent[/variant]/task/seed<k>, as in progress messages."""
        return "/".join([self.suite, self.agent, *([self.variant] if self.variant else []), self.task, f"seed{self.seed}"])


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in GROUPS[group].glob("*.yaml"))


def suite_aliases() -> dict[str, str]:
    """Other names of suites, from each suite file's `also_known_as` list (atari100k -> atari26)."""
    aliases = {}
    for name in choices("suite"):
        for alias in yaml.safe_load((GROUPS["suite"] / f"{name}.yaml").read_text()).get("also_known_as", []):
            aliases[alias] = name
    return aliases


def _rewrite(arg: str, aliases: dict[str, str]) -> str:
    """Map the CLI's shorthands onto Hydra overrides, checking group choices on the way."""
    if "=" not in arg:
        raise ConfigError(f"expected key=value, got '{arg}' (see --help)")
    key, value = arg.split("=", 1)
    if key == "suite":
        value = aliases.get(value, value)
    if key in GROUPS:
        if value not in choices(key):
            raise ConfigError(f"unknown {key} '{value}'; valid {key}s: {', '.join(choices(key))}")
        return f"clusters@cluster={value}" if key == "cluster" else f"{key}={value}"
    if key == "task" and "," in value:  # a list of tasks, not a Hydra sweep
        return f"task='{value}'"
    return arg


def compose(args: list[str]) -> DictConfig:
    aliases = suite_aliases()
    overrides = [_rewrite(a, aliases) for a in args]
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            return hydra_compose("config", overrides=overrides)
    except HydraException as error:
        raise ConfigError(_explain(error, overrides)) from None


def _explain(error: HydraException, overrides: list[str]) -> str:
    message = str(error)
    if "not in struct" in message or "Could not override" in message or "Could not append" in message:
        key = message.split("'")[1] if "'" in message else "?"
        parent, _, leaf = key.rpartition(".")
        base = compose([o for o in overrides if not o.startswith(key)])
        node = OmegaConf.select(base, parent) if parent else base
        if isinstance(node, DictConfig):
            valid = ", ".join(f"{parent + '.' if parent else ''}{k}" for k in node.keys() if k != "hydra")
            return f"unknown key '{key}'; valid keys there: {valid}"
    return f"invalid command line: {message.splitlines()[0]}"


def _int(cfg: DictConfig, key: str, minimum: int, allow_none: bool = False) -> None:
    value = OmegaConf.select(cfg, key)
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"invalid value for '{key}': {value!r} (expected an integer >= {minimum})")


def _validate(cfg: DictConfig) -> None:
    _int(cfg, "seeds", 1)
    _int(cfg, "seed", 0)
    _int(cfg, "steps", 1, allow_none=True)
    _int(cfg, "workers", 1)
    _int(cfg, "agent.envs", 1)
    for key in ("budget", "action_repeat"):
        _int(cfg, f"suite.protocol.{key}", 1)
    for key in ("eval_every", "eval_episodes", "final_eval_episodes"):
        _int(cfg, f"suite.protocol.{key}", 0)
    for key in ("run.log_every", "run.checkpoint_every"):
        value = OmegaConf.select(cfg, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"invalid value for '{key}': {value!r} (expected seconds > 0)")
    if cfg.run.parallel_envs not in ("auto", True, False):
        raise ConfigError(f"invalid value for 'run.parallel_envs': {cfg.run.parallel_envs!r} (auto, true or false)")
    if not isinstance(cfg.force, bool):
        raise ConfigError(f"invalid value for 'force': {cfg.force!r} (true or false)")


def _tasks(cfg: DictConfig, suite: Suite) -> list[str]:
    if cfg.task in (None, "all"):
        return list(suite.tasks)
    try:
        return list(dict.fromkeys(suite.canonical_task(t.strip()) for t in str(cfg.task).split(",")))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _protocol_overrides(cfg: DictConfig) -> dict[str, Any]:
    """Every suite setting that differs from the suite's own file: reports mark such runs."""
    paper = OmegaConf.to_container(compose([f"suite={cfg.suite.name}"]).suite, resolve=True)
    run = OmegaConf.to_container(cfg.suite, resolve=True)
    changes: dict[str, Any] = {}

    def diff(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
        elif a != b:
            changes[prefix] = {"paper": a, "run": b}

    diff(paper, run, "")
    return changes


def make_plan(cfg: DictConfig, variant: dict[str, Any] | None = None) -> list[RunSpec]:
    """Validate everything the command line says and return one RunSpec per task and seed.

    A variant (harness/sweep.py) puts the runs one level deeper, <agent>/<variant name>/<task>/, and
    is recorded in config.yaml."""
    _validate(cfg)
    if cfg.steps is not None:
        cfg.suite.protocol.budget = cfg.steps
    suite = Suite.from_config(OmegaConf.to_container(cfg.suite, resolve=True))
    tasks = _tasks(cfg, suite)
    try:
        suite.check_installed()
        require(list(cfg.agent.get("requires") or []), cfg.agent.get("extra", ""), f"agent '{cfg.agent.name}'")
    except MissingDependency as error:
        raise ConfigError(str(error)) from None
    agent_class = resolve(cfg.agent.factory)
    if hasattr(agent_class, "validate_config"):
        try:
            agent_class.validate_config(OmegaConf.to_container(cfg.agent, resolve=True))
        except ValueError as error:
            raise ConfigError(f"invalid agent setting: {error}") from None
    if cfg.logger.tensorboard and importlib.util.find_spec("tensorboardX") is None:
        raise ConfigError("logger.tensorboard=true needs tensorboardX: install the 'tensorboard' extra")
    if cfg.logger.wandb and importlib.util.find_spec("wandb") is None:
        raise ConfigError("logger.wandb=true needs wandb: install the 'wandb' extra (pip install 'dreamerbench[wandb]')")

    overrides = _protocol_overrides(cfg)
    specs = []
    for task in tasks:
        for seed in range(cfg.seed, cfg.seed + cfg.seeds):
            run = {"format": 1, **{k: OmegaConf.to_container(cfg[k], resolve=True)
                                   if isinstance(cfg[k], DictConfig) else cfg[k] for k in RUN_KEYS}}
            run.update(task=task, seed=seed, protocol_overrides=overrides)
            agent_dir = Path(cfg.root) / suite.name / cfg.agent.name
            if variant:
                run["variant"] = variant
                agent_dir /= variant["name"]
            specs.append(RunSpec(suite.name, task, cfg.agent.name, seed, agent_dir / task / f"seed{seed}",
                                 suite.protocol.budget, suite.protocol.budget_frames, run,
                                 variant["name"] if variant else None))
    return specs
