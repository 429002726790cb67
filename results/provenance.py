"""Which runs were made at code that predates a fix that changed results.

The fixes are listed in reference/result_changes.yaml (CHANGELOG.md, "Changes that affect results"). A run
of this project records the commit of its code in meta.json (git_commit, git_commit_date; per session since
the resume of one run may span several commits). It predates a fix when the fix's commit is not an ancestor
of a commit the run ran at: git answers that where this copy of the code has the history of both commits
(`git merge-base --is-ancestor`); elsewhere (a pip-installed copy has no .git, or the run's commit is not in
this history) the commit dates decide, which can be wrong for a commit on a branch made after the fix
without merging it. Fixes to the report code give no warning: the report applies the code it runs with to
every run, whenever the run was made.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from results import reference
from results.checks import label

REPO = Path(__file__).resolve().parents[1]  # the checkout whose history git is asked about, where it is one


@dataclass(frozen=True)
class Fix:
    commit: str
    date: datetime
    agents: tuple[str, ...]
    suites: tuple[str, ...] | None  # None: every suite
    summary: str

    def changes(self, agent: str | None, suite: str) -> bool:
        """Whether the fix changed what runs of `agent` on `suite` learn or log."""
        return agent in self.agents and (self.suites is None or suite in self.suites)


@cache
def fixes() -> tuple[Fix, ...]:
    """The result-changing fixes, newest first."""
    entries = yaml.safe_load((reference.FOLDER / "result_changes.yaml").read_text())
    return tuple(Fix(e["commit"], datetime.fromisoformat(e["date"]), tuple(e["agents"]),
                     tuple(e["suites"]) if "suites" in e else None, e["summary"]) for e in entries)


@cache
def _is_ancestor(repo: Path, ancestor: str, commit: str) -> bool | None:
    """git's answer in `repo`; None where it cannot give one (no git, no repository, an unknown commit)."""
    try:
        code = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", ancestor, commit],
                              capture_output=True).returncode
    except OSError:
        return None
    return {0: True, 1: False}.get(code)


def predates(fix: Fix, commit: str | None, date: str | None) -> bool | None:
    """Whether code at `commit` (committed at ISO date `date`) lacks `fix`; None where neither tells."""
    if commit == fix.commit:
        return False
    if commit:
        ancestor = _is_ancestor(REPO, fix.commit, commit)
        if ancestor is not None:
            return not ancestor
    if not date or datetime.fromisoformat(date) == fix.date:  # git dates have seconds: a tie cannot tell
        return None
    return datetime.fromisoformat(date) < fix.date


def _lacks(run: Any, fix: Fix) -> bool | None:
    """Whether some session of `run` ran at code without `fix`; None where no session can be placed."""
    answers = [predates(fix, commit, date) for commit, date in run.code]
    return True if True in answers else (False if False in answers else None)


def warnings(runs: pd.DataFrame) -> list[str]:
    """For one suite's runs (load.Data.runs), a warning per fix and method for the runs of this project made
    before a fix that changed their agent, and one per method for the runs whose code cannot be placed."""
    ours = [(label(run.method, run.source), run) for run in runs[runs["source"] == "new"].itertuples()]
    found, unplaced = [], set()
    for fix in fixes():
        stale = []
        for name, run in ours:
            if fix.changes(run.agent, run.suite):
                lacks = _lacks(run, fix)
                if lacks:
                    stale.append(name)
                elif lacks is None:
                    unplaced.add(run.origin)
        found += [f"{stale.count(name)} run(s) of {name} were made before {fix.commit[:7]} ({fix.summary}, "
                  f"{fix.date:%Y-%m-%d}): their results predate that fix" for name in sorted(set(stale))]
    unknown = sorted(name for name, run in ours if run.origin in unplaced)
    found += [f"{unknown.count(name)} run(s) of {name} record no code version this report can place (meta.json "
              "git_commit, and git_commit_date where this copy has no git history): whether they predate the "
              "fixes of CHANGELOG.md that changed their agent cannot be told" for name in sorted(set(unknown))]
    return found
