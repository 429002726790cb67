"""Reference tables shipped with the package (sources and fixes: README.md in this folder).

Everything here is read from files next to this module, never from `../shared`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

FOLDER = Path(__file__).parent


@cache
def table(name: str) -> pd.DataFrame:
    """One of the CSV tables in this folder, e.g. `table('atari_scores.csv')`."""
    path = FOLDER / name
    if not path.exists():
        valid = sorted(p.name for p in FOLDER.glob("*.csv"))
        raise ValueError(f"unknown reference table '{name}'; valid: {', '.join(valid)}")
    return pd.read_csv(path)


@cache
def _yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((FOLDER / name).read_text())


def suite_defaults(suite: str) -> dict[str, Any]:
    """Budget, final-score rule, normaliser and task list of a suite for data that has no run config."""
    suites = _yaml("suites.yaml")
    if suite not in suites:
        raise ValueError(f"no defaults for suite '{suite}'; known suites: {', '.join(suites)}")
    return suites[suite]


def suite_tasks(suite: str) -> list[str]:
    """The canonical task list of a suite."""
    spec = suite_defaults(suite)["tasks"]
    if isinstance(spec, list):
        return list(spec)
    rows = table(spec["csv"])
    if "column" in spec:
        rows = rows[rows[spec["column"]] == 1]
    if "suite" in spec:
        rows = rows[rows["suite"] == spec["suite"]]
    return list(rows["task"])


def published_index() -> list[dict[str, Any]]:
    """Entries of published.yaml: which published file belongs to which suite, in which format."""
    return list(_yaml("published.yaml")["files"])


def counterpart(agent: str) -> str:
    """The published method name that a new run of `agent` reproduces."""
    return _yaml("published.yaml")["counterparts"].get(agent, agent)
