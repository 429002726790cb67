import json
from pathlib import Path

import pytest
import yaml

from results.reference import PUBLISHED


@pytest.fixture(scope="session")
def published() -> Path:
    """The published score files shipped with the package (results/published; read-only)."""
    return PUBLISHED


def write_run(root: Path, suite: dict, agent: str, task: str, seed: int, episodes: list[dict],
              state: str = "done", step: int | None = None, overrides: dict | None = None,
              compute: dict | None = None, meta: dict | None = None) -> Path:
    """A run directory in the format the harness writes (docs/reference/run-directory.md, format 1); `meta`
    adds keys to its meta.json (e.g. git_commit)."""
    run = root / suite["name"] / agent / task / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    budget = suite["protocol"]["budget"] * suite["protocol"]["action_repeat"]
    config = {"format": 1, "suite": suite, "agent": {"name": agent}, "task": task, "seed": seed,
              "protocol_overrides": overrides or {}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "status.json").write_text(json.dumps({"state": state, "step": budget if step is None else step,
                                                 "budget": budget}))
    (run / "meta.json").write_text(json.dumps({"format": 1, "device": "gpu: NVIDIA H100",
                                               "compute": compute or {"wall_seconds": 3600.0,
                                                                      "cpu_seconds": 1800.0,
                                                                      "gpu_seconds": 3600.0},
                                               **(meta or {})}))
    (run / "scores.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    return run


def atari26_suite(**protocol) -> dict:
    """The atari26 suite section of a run config (as harness/config/suite/atari26.yaml resolves)."""
    base = {"budget": 100000, "action_repeat": 4, "episode_cap": 108000, "eval_every": 0, "eval_episodes": 0,
            "final_eval_episodes": 100,
            "final_score": {"rule": "train_window", "start": 390000, "end": 400000, "second": "eval_after_training"},
            "normaliser": "atari_human"}
    return {"name": "atari26", "tasks": [], "protocol": {**base, **protocol}}


@pytest.fixture
def make_run():
    return write_run


@pytest.fixture
def atari26():
    return atari26_suite
