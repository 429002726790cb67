"""Grids: a comma list on any key (or Hydra's `range()`, `choice()`) expands to the product of values.

`expand(args)` parses the command line with Hydra's own override parser (the multirun syntax,
without running Hydra's multirun) and returns one Point per combination. `variant(cfg, point)`
names a point's run directories from the keys that vary in the grid, resolved in its composed
config and sorted, so the name does not depend on how a value or the command line was written:
`agent.discrete.lr=1e-3,3e-4` gives `discrete.lr=0.001` and `discrete.lr=0.0003`. Two grids that
share a point therefore share its run directories. A command without a list (and without `name=`)
has no variant and keeps the plain layout `<root>/<suite>/<agent>/<task>/seed<k>/`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf

from harness.plan import ConfigError

# Keys that never name a variant: they are part of the path already (suite, agent, task, seed), or
# they do not change what a run computes (where and how it runs, what it logs).
NOT_A_SETTING = {"suite", "agent", "task", "seed", "seeds", "root", "workers", "force", "launcher", "cluster", "name"}
NOT_A_SETTING_PREFIXES = ("run.", "logger.", "launcher.", "cluster.")
ONE_VALUE = ("launcher", "cluster", "workers", "force", "root", "name")  # one launch per command


@dataclass(frozen=True)
class Point:
    args: tuple[str, ...]  # the command line of this point: one value per key
    varying: tuple[str, ...]  # the keys that take several values in the grid and name the variant


def is_setting(key: str) -> bool:
    return key not in NOT_A_SETTING and not key.startswith(NOT_A_SETTING_PREFIXES)


def _values(arg: str, parser: OverridesParser) -> tuple[str, list[str]]:
    if "=" not in arg:
        raise ConfigError(f"expected key=value, got '{arg}' (see --help)")
    key, value = arg.split("=", 1)
    if key == "task" or not any(c in value for c in ",("):  # a task list is a list of tasks, not a grid
        return key, [value]
    try:
        override = parser.parse_override(arg)
    except HydraException as error:  # OverrideParseException and grammar errors
        raise ConfigError(f"cannot parse '{arg}': {str(error).splitlines()[0]}") from None
    if not override.is_sweep_override():
        return key, [value]
    values = list(dict.fromkeys(override.sweep_string_iterator()))
    if key in ONE_VALUE and len(values) > 1:
        raise ConfigError(f"{key}= takes one value per command, got {', '.join(values)}"
                          + (": the keys that vary name the variants by themselves" if key == "name" else ""))
    return key, values


def expand(args: list[str]) -> list[Point]:
    """One Point per combination of the listed values, in command-line order (the last key fastest)."""
    parser = OverridesParser.create()
    keys, lists = zip(*[_values(a, parser) for a in args]) if args else ((), ())
    varying = tuple(sorted(k.lstrip("+") for k, values in zip(keys, lists) if len(values) > 1 and is_setting(k)))
    return [Point(tuple(f"{k}={v}" for k, v in zip(keys, combo)), varying) for combo in itertools.product(*lists)]


def _text(value: Any) -> str:
    """A setting's value as it appears in a directory name: YAML-like, without spaces or slashes."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_text(v)}" for k, v in value.items()) + "}"
    return str(value).replace("/", "_").replace(" ", "")


def short_key(key: str) -> str:
    """`agent.size` -> `size`: the agent is in the path already."""
    return key.removeprefix("agent.")


def variant(cfg: DictConfig, point: Point) -> dict[str, Any] | None:
    """{'name': directory name, 'label': name in reports, 'settings': {key: value}} of a point, or None
    for the plain layout."""
    settings = {}
    for key in point.varying:
        value = OmegaConf.select(cfg, key)
        settings[key] = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    parts = ([str(cfg.name)] if cfg.get("name") else []) + [f"{short_key(k)}={_text(v)}" for k, v in settings.items()]
    if not parts:
        return None
    if cfg.get("name") and ("/" in str(cfg.name) or str(cfg.name).startswith(".")):
        raise ConfigError(f"name={cfg.name!r} cannot name a directory (no '/', no leading '.')")
    # reports call the variant by its label: 'dreamerv3 [size=12m, train_ratio=512]'
    return {"name": ",".join(parts), "label": f"{cfg.agent.name} [{', '.join(parts)}]", "settings": settings}
