"""Checks on the record an interrupted and resumed run leaves, shared by the resume and fault-injection tests."""

from __future__ import annotations

import json

from harness.rundir import RunDir


def training_episodes_cut(scores: list[dict]) -> int:
    """Check that the training episodes of a run's scores are unique, in order and back to back; return how
    many were cut short.

    An interruption loses the episode in progress, so the next recorded episode ends more than its own
    length after the one before it. Any other gap, or an overlap, is an error.
    """
    train = [s for s in scores if s["mode"] == "train"]
    steps = [s["step"] for s in train]
    assert steps == sorted(set(steps)), "duplicated or out-of-order training episodes"
    assert train[0]["step"] >= train[0]["episode/length"], "the first episode ends before its own length"
    gaps = [(a, b) for a, b in zip(train, train[1:]) if b["step"] - a["step"] != b["episode/length"]]
    assert all(b["step"] - a["step"] > b["episode/length"] for a, b in gaps), "an episode overlaps the one before it"
    return len(gaps)


def check_metrics_in_order(run: RunDir) -> None:
    steps = [json.loads(line)["step"] for line in run.metrics.read_text().splitlines()]
    assert steps == sorted(set(steps)), "metrics.jsonl steps not increasing"


def check_sessions_continue(run: RunDir) -> list[dict]:
    """Each session in meta.json starts at or before the step the one before it recorded; returns them."""
    sessions = json.loads(run.meta.read_text())["sessions"]
    assert all(after["start_step"] <= before["end_step"] for before, after in zip(sessions, sessions[1:])), \
        f"a session resumed past the step the one before it recorded: {sessions}"
    return sessions


def read_scores(run: RunDir) -> list[dict]:
    return [json.loads(line) for line in run.scores.read_text().splitlines()]
