"""What a suite is: a task list, the paper's protocol, and an env factory.

A suite is described by a YAML file in `harness/config/suite/<name>.yaml` and a Python module with a
`make_env(suite, task, seed, mode)` function (named by the file's `factory` key). Adding a suite means
adding those two files; the loop never changes.

Every env a factory returns follows one contract:
  - observation space: `gymnasium.spaces.Dict` with `image` (uint8 HxWxC) and/or named float32 vectors;
  - action space: `Discrete` or `Box` in [-1, 1];
  - `terminated` / `truncated` as gymnasium defines them; the episode cap and action repeat are applied
    inside the env, so one `step` is one agent step worth `protocol.action_repeat` frames;
  - episode extras (Crafter achievements, Minecraft milestones) as scalar `info` entries whose keys start
    with `log/`, set on the episode's last step; the loop writes them into `scores.jsonl`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym

EXTRA_INFO_PREFIX = "log/"


class MissingDependency(ImportError):
    """An optional package is not installed; the message names the extra that brings it."""


def require(modules: list[str], extra: str, what: str, note: str = "") -> None:
    """Raise MissingDependency unless every module in `modules` can be imported."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependency(
            f"{what} needs {', '.join(missing)}: install the '{extra}' extra, "
            f"e.g. pip install -e '.[{extra}]'" + (f". {note}" if note else "")
        )


@dataclass(frozen=True)
class Protocol:
    """The evaluation protocol of a suite, as the paper ran it (each suite's source: docs/reference/suites.md)."""

    budget: int  # agent steps (env.step calls) per run
    action_repeat: int  # env frames per agent step; files log step = agent steps * action_repeat
    episode_cap: int | None  # frames per episode (None: the env's own limit)
    eval_every: int  # agent steps between periodic evaluations (0: none)
    eval_episodes: int  # episodes per periodic evaluation
    final_eval_episodes: int  # episodes after the budget is spent (0: none)
    final_score: dict[str, Any]  # {"rule": name, ...arguments}, read by results.final
    normaliser: str  # name of a results.normalize normaliser

    @property
    def budget_frames(self) -> int:
        return self.budget * self.action_repeat

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "Protocol":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in cfg.items() if k in known})


@dataclass(frozen=True)
class Suite:
    """A suite's resolved config: what `harness/config/suite/<name>.yaml` says, after overrides."""

    name: str
    tasks: list[str]
    protocol: Protocol
    factory: str  # "module:function" of the env factory
    env: dict[str, Any] = field(default_factory=dict)  # suite-specific env settings
    aliases: dict[str, str] = field(default_factory=dict)  # other task names -> canonical name
    requires: list[str] = field(default_factory=list)  # modules the factory needs
    extra: str = ""  # the pip extra that installs them
    install_note: str = ""  # what else the extra needs (e.g. MineRL: Java 8)

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "Suite":
        return cls(
            name=cfg["name"],
            tasks=list(cfg["tasks"]),
            protocol=Protocol.from_config(cfg["protocol"]),
            factory=cfg["factory"],
            env=dict(cfg.get("env") or {}),
            aliases=dict(cfg.get("aliases") or {}),
            requires=list(cfg.get("requires") or []),
            extra=cfg.get("extra", ""),
            install_note=cfg.get("install_note", ""),
        )

    def canonical_task(self, name: str) -> str:
        """The task's canonical name; raises ValueError listing the valid names."""
        name = self.aliases.get(name, name)
        if name not in self.tasks:
            raise ValueError(
                f"unknown task '{name}' for suite '{self.name}'; valid tasks: {', '.join(self.tasks)}"
            )
        return name

    def check_installed(self) -> None:
        require(self.requires, self.extra, f"suite '{self.name}'", self.install_note)

    def make_env(self, task: str, seed: int, mode: str = "train") -> gym.Env:
        """Build one env of `task` (canonical name) for `mode` 'train' or 'eval'."""
        self.check_installed()
        return resolve(self.factory)(self, task, seed, mode)


def resolve(target: str) -> Callable[..., Any]:
    """Import 'package.module:attribute'."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
