"""Canonical suite and task names, so that runs and published files of one task meet.

Sources name the same task differently (`MsPacman`, `ms_pacman`, `mspacman`, `atari_ms_pacman`,
`ALE/MsPacman-v5`; `jamesbond` / `james_bond`; `dmc_cup_catch` / `ball_in_cup_catch`; `crafter-reward`).
Canonical forms: Atari snake case as in DreamerV3's files (`ms_pacman`, `jamesbond`), DMC
`<domain>_<task>` without prefix (`ball_in_cup_catch`), `crafter_reward`, Minecraft `diamond`,
classic control gymnasium ids (`CartPole-v1`). `slug` turns a method's label into a file name.
"""

from __future__ import annotations

import re

from results import reference

SUITE_ALIASES = {"atari100k": "atari26", "dmc": "dmc_proprio", "dmlab": "dmlab30"}
SUITES = ["classic", "atari26", "atari57", "atari57_dreamerv2", "dmc_proprio", "dmc_vision", "crafter",
          "minecraft", "dmlab30", "procgen"]
# Task-name prefixes that published files put before the task, and the family they mark.
PREFIX_FAMILY = {"atari": "atari", "dmc": "dmc", "crafter": "crafter", "minecraft": "minecraft",
                 "dmlab": "dmlab30", "procgen": "procgen"}
SUITE_FAMILY = {"atari26": "atari", "atari57": "atari", "atari57_dreamerv2": "atari", "dmc_proprio": "dmc",
                "dmc_vision": "dmc", "crafter": "crafter", "minecraft": "minecraft", "classic": "classic",
                "dmlab30": "dmlab30", "procgen": "procgen"}

# Variants that differ by more than case and separators.
EXTRA_VARIANTS = {
    "dmc": {"cupcatch": "ball_in_cup_catch"},
    "crafter": {"reward": "crafter_reward", "noreward": "crafter_noreward"},
    "classic": {"cartpole": "CartPole-v1", "acrobot": "Acrobot-v1", "pendulum": "Pendulum-v1"},
}


def canonical_suite(name: str) -> str:
    """The canonical suite name; raises ValueError listing the valid ones."""
    name = SUITE_ALIASES.get(name, name)
    if name not in SUITES:
        valid = SUITES + sorted(SUITE_ALIASES)
        raise ValueError(f"unknown suite '{name}'; valid suites: {', '.join(valid)}")
    return name


def slug(label: str) -> str:
    """`label` as a file name, for the tables and plots a report writes: lower case, each run of characters
    outside [a-z0-9._=-] one '-', none at either end. 'dreamerv3_official (new)' -> 'dreamerv3_official-new'
    (and published 'dreamerv3' stays 'dreamerv3'), 'ppo [discrete.lr=0.001] (new)' -> 'ppo-discrete.lr=0.001-new'.
    Labels that differ only in case or in the characters replaced would share one."""
    return re.sub(r"[^a-z0-9._=-]+", "-", label.lower()).strip("-")


def _key(name: str) -> str:
    """Lower case without separators: the form every variant of a name agrees on."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _lookup(family: str) -> dict[str, str]:
    if family == "atari":
        tasks = list(reference.table("atari_scores.csv")["task"])
    elif family == "dmc":
        tasks = list(reference.table("dmc_tasks.csv")["task"])
    elif family == "classic":
        tasks = reference.suite_tasks("classic")
    elif family in ("dmlab30", "procgen"):
        tasks = reference.suite_tasks(family)
    elif family == "crafter":
        tasks = ["crafter_reward", "crafter_noreward"]
    else:
        tasks = ["diamond"]
    lookup = {_key(t): t for t in tasks}
    lookup.update(EXTRA_VARIANTS.get(family, {}))
    return lookup


def family_of(task: str) -> str | None:
    """The family a prefixed published task name belongs to (`atari_pong` -> atari), or None."""
    head = re.split(r"[_\-]", task, maxsplit=1)[0].lower()
    return PREFIX_FAMILY.get(head)


def canonical_task(suite: str, name: str) -> str:
    """The canonical name of task `name` of `suite`; raises ValueError listing the valid names."""
    family = SUITE_FAMILY[canonical_suite(suite)]
    bare = name
    if family == "atari":
        bare = re.sub(r"^(atari[_\-]|ALE/)", "", bare)
        bare = re.sub(r"(NoFrameskip)?-v\d+$", "", bare)
    elif family in ("dmc", "dmlab30", "procgen", "minecraft"):
        bare = re.sub(rf"^({family.rstrip('30')}|dmc)[_\-]", "", bare)
    elif family == "crafter":
        bare = re.sub(r"-v\d+$", "", bare)
        bare = re.sub(r"^crafter[_\-]?", "", bare, flags=re.IGNORECASE)
    if family == "classic":
        bare = re.sub(r"-v\d+$", "", bare)
    lookup = _lookup(family)
    if _key(bare) not in lookup:
        valid = sorted(set(lookup.values()))
        raise ValueError(f"unknown task '{name}' for suite '{suite}'; valid tasks: {', '.join(valid)}")
    return lookup[_key(bare)]
