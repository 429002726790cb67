"""Runs made before a fix that changed results are named in the report's warnings (results/provenance.py),
by git ancestry where this checkout has the history, else by the commit date meta.json records."""

import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from results import provenance
from results.load import load
from results.report import main

# Real commits of this repository around the block-linear initialiser fix (b08182f, DreamerV3 only).
FIX = "b08182f58b686080215a9b2d56b2636d376b8347"
BEFORE = ("6adf9d4c56aba66d0ae56feaca3f84b7ff982737", "2026-12-01T03:18:25+00:00")
AFTER = ("5d798fdbbeb1d217ece5fe2d92d6eb5ff70cc028", "2026-12-07T18:53:20+00:00")
EPISODES = [{"step": 400000, "episode/score": 10.0, "mode": "eval", "final": True}]
CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"


def has_history(*commits: str) -> bool:
    return all(subprocess.run(["git", "-C", str(provenance.REPO), "cat-file", "-e", f"{c}^{{commit}}"],
                              capture_output=True).returncode == 0 for c in commits)


def about_fix(warnings: list[str]) -> list[str]:
    return [w for w in warnings if f"before {FIX[:7]}" in w]


def runs_at(root: Path, make_run, atari26, agent: str, code: list[dict]) -> Path:
    """One run of `agent` per meta.json code record in `code`, seeds 0, 1, ..."""
    for seed, meta in enumerate(code):
        make_run(root, atari26(final_score={"rule": "eval_after_training"}), agent, "pong", seed, EPISODES, meta=meta)
    return root


@pytest.mark.skipif(not has_history(FIX, *BEFORE[:1], *AFTER[:1]), reason="needs this repository's git history")
def test_git_ancestry_decides_where_the_history_is_here(tmp_path, make_run, atari26):
    """The dates are swapped on purpose: git's answer wins over them. Through the report: its Warnings."""
    runs_at(tmp_path / "runs", make_run, atari26, "dreamerv3", [
        {"git_commit": BEFORE[0], "git_commit_date": AFTER[1]},
        {"git_commit": BEFORE[0], "git_commit_date": AFTER[1]},
        {"git_commit": AFTER[0], "git_commit_date": BEFORE[1]},
    ])
    out = tmp_path / "report"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--no-plots", "--reps", "200"]) == 0
    text = out.joinpath("report.md").read_text()
    warning = re.search(rf"- (.* before {FIX[:7]} .*)", text)
    assert warning and warning.group(1).startswith("2 run(s) of dreamerv3 (new) were made before b08182f (")
    assert warning.group(1).endswith(", 2026-12-01): their results predate that fix")


def test_commit_dates_decide_without_git_history(tmp_path, make_run, atari26, monkeypatch):
    monkeypatch.setattr(provenance, "REPO", tmp_path / "no-repository")  # as a pip-installed copy
    runs_at(tmp_path / "runs", make_run, atari26, "dreamerv3", [
        {"git_commit": BEFORE[0], "git_commit_date": BEFORE[1]},
        {"git_commit": AFTER[0], "git_commit_date": AFTER[1]},
    ])
    warnings = provenance.warnings(load([tmp_path / "runs"]).runs)
    assert [w.split(" were")[0] for w in about_fix(warnings)] == ["1 run(s) of dreamerv3 (new)"]
    assert not any("cannot be told" in w for w in warnings)


def test_a_resumed_run_predates_a_fix_its_first_session_lacked(tmp_path, make_run, atari26, monkeypatch):
    monkeypatch.setattr(provenance, "REPO", tmp_path / "no-repository")
    sessions = [{"git_commit": c, "git_commit_date": d} for c, d in (BEFORE, AFTER)]
    runs_at(tmp_path / "runs", make_run, atari26, "dreamerv3",
            [{"git_commit": AFTER[0], "git_commit_date": AFTER[1], "sessions": sessions}])
    assert about_fix(provenance.warnings(load([tmp_path / "runs"]).runs))


def test_only_the_agents_a_fix_changed_and_unplaceable_runs(tmp_path, make_run, atari26, monkeypatch):
    """PPO did not get the DreamerV3 fix; a run without a commit, or with a commit but no date and no git
    history, cannot be placed; an agent no fix changed (a published method's name) needs no version."""
    monkeypatch.setattr(provenance, "REPO", tmp_path / "no-repository")
    runs_at(tmp_path / "runs", make_run, atari26, "ppo", [{"git_commit": BEFORE[0], "git_commit_date": BEFORE[1]}])
    runs_at(tmp_path / "runs", make_run, atari26, "dreamerv3", [{}, {"git_commit": BEFORE[0]}])
    runs_at(tmp_path / "runs", make_run, atari26, "storm", [{}])
    warnings = provenance.warnings(load([tmp_path / "runs"]).runs)
    assert not about_fix(warnings) and not any("ppo" in w or "storm" in w for w in warnings)
    assert [w for w in warnings if "cannot be told" in w] == [
        "2 run(s) of dreamerv3 (new) record no code version this report can place (meta.json git_commit, and "
        "git_commit_date where this copy has no git history): whether they predate the fixes of CHANGELOG.md "
        "that changed their agent cannot be told"]


def test_the_fix_list_matches_the_changelog_and_the_history():
    """Every listed fix has a full hash and a date, is named in CHANGELOG.md, and, where the history is here,
    its date is the commit's own (the date rule depends on it). Report fixes name no agent."""
    changelog = CHANGELOG.read_text()
    for fix in provenance.fixes():
        assert re.fullmatch(r"[0-9a-f]{40}", fix.commit) and fix.summary
        assert fix.commit[:7] in changelog, f"{fix.commit[:7]} is not in CHANGELOG.md"
        assert fix.agents == ("report",) or "report" not in fix.agents
        if has_history(fix.commit):
            date = subprocess.run(["git", "-C", str(provenance.REPO), "show", "-s", "--format=%cI", fix.commit],
                                  capture_output=True, text=True, check=True).stdout.strip()
            assert datetime.fromisoformat(date) == fix.date, fix.commit
