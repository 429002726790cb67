"""Reference tables and the published score files shipped with the package (sources and fixes:
README.md in this folder; the score files' origins and checksums: ../published/SOURCES.md).

Everything here is read from files of the package, never from a folder beside the checkout.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

FOLDER = Path(__file__).parent
PUBLISHED = FOLDER.parent / "published"  # the shipped published score files


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
    """The canonical task list of a suite: the tasks its aggregates use."""
    spec = suite_defaults(suite)["tasks"]
    if isinstance(spec, list):
        return list(spec)
    rows = table(spec["csv"])
    if "column" in spec:
        rows = rows[rows[spec["column"]] == 1]
    if "suite" in spec:
        rows = rows[rows["suite"] == spec["suite"]]
    return [t for t in rows["task"] if t not in spec.get("exclude", [])]


def published_index() -> list[dict[str, Any]]:
    """Entries of published.yaml: which published file belongs to which suite, in which format."""
    return list(_yaml("published.yaml")["files"])


def same_file(name: str, other: str) -> bool:
    """Whether two published file names (relative paths) name the same file, gzipped or not."""
    return name.removesuffix(".gz") == other.removesuffix(".gz")


def published_files(suite: str) -> list[Path]:
    """The shipped published score files of a suite (canonical name)."""
    return [PUBLISHED / e["file"] for e in published_index() if e["suite"] == suite]


def counterpart(agent: str) -> str:
    """The published method name that a new run of `agent` reproduces."""
    return _yaml("published.yaml")["counterparts"].get(agent, agent)
