"""The worked example of docs/extending/add-an-agent.md (examples/tiny_agent.py) runs through the harness:
a run to its budget, with its metrics, its checkpoint and the agent named in its config."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from agents.base import Agent
from harness.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]
RUN = ("suite=classic", "task=CartPole-v1", "agent=random", "agent.factory=examples.tiny_agent:TinyAgent",
       "root=r")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-m", "harness.run", *RUN, *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_tiny_agent_runs_through_the_harness(tmp_path):
    run(tmp_path, "steps=1500")
    rundir = RunDir(tmp_path / "r/classic/random/CartPole-v1/seed0")
    status = rundir.read_status()
    assert status["state"] == "done" and status["agent_step"] == 1500
    metrics = [json.loads(line) for line in rundir.metrics.read_text().splitlines()]
    assert 0 < metrics[-1]["train/best_mean_reward"] <= 1  # CartPole pays 1 per step
    checkpoint = rundir.latest_checkpoint()
    assert json.loads((checkpoint / "agent" / "tiny_agent.json").read_text())["counts"]
    config = rundir.read_config()
    assert config["agent"]["factory"] == "examples.tiny_agent:TinyAgent"


def test_tiny_agent_has_every_method_of_the_protocol():
    spec = importlib.util.spec_from_file_location("tiny_agent", REPO / "examples" / "tiny_agent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("act", "observe", "update", "save", "load"):
        assert callable(getattr(module.TinyAgent, name)), name
    assert {"act", "observe", "update", "save", "load"} <= set(vars(Agent))
