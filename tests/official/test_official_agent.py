"""`agent=dreamerv3_official` through the harness: a run stopped by SIGTERM resumes and finishes, its
report loads; the server dies with its worker and a dead server fails the run clearly; a missing
official venv is refused at validation with the setup command.

Tiny settings (size 1m, batch 2 x 8, one update per env step) keep the runs to about a minute each.
"""

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from omegaconf import OmegaConf

from agents.official import agent as official_agent
from agents.official import setup
from harness.plan import ConfigError, compose, make_plan
from harness.rundir import RunDir
from results.load import load_run

pytestmark = pytest.mark.official

STEPS = 200
RUN = ("suite=dmc_proprio", "task=cartpole_balance", "agent=dreamerv3_official", f"steps={STEPS}", "agent.size=1m",
       "agent.envs=1", "agent.batch_size=2", "agent.batch_length=8", "agent.train_ratio=16",
       "run.checkpoint_every=1", "run.log_every=1", "suite.protocol.final_eval_episodes=1")
SERVER = [sys.executable, "-c", """
import sys, time, gymnasium as gym, numpy as np, yaml
from agents.official.agent import OfficialDreamerAgent
config = yaml.safe_load(open('harness/config/agent/dreamerv3_official.yaml'))
config.update(size='1m', batch_size=2, batch_length=8)
obs = gym.spaces.Dict({'position': gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)})
agent = OfficialDreamerAgent(config, obs, gym.spaces.Discrete(3), 1, 0)
print(agent.server.process.pid, agent.server.scratch, flush=True)
time.sleep(600)
"""]


def server_saved(checkpoint) -> int:
    """The official update counter saved in a checkpoint (read in the official venv: it is its pickle)."""
    code = "import pickle, sys; print(pickle.load(open(sys.argv[1], 'rb'))['counters']['updates'])"
    done = subprocess.run([str(setup.official_python()), "-c", code, str(checkpoint / "agent" / "agent.pkl")],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_then_rerun_resumes_and_finishes(tmp_path, run_cli, official_python):
    run = RunDir(tmp_path / "runs/dmc_proprio/dreamerv3_official/cartpole_balance/seed0")
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    launcher = subprocess.Popen([sys.executable, "-m", "harness.run", *RUN], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (run.read_status().get("agent_step", 0) >= 80 and run.latest_checkpoint()):
        assert time.monotonic() < deadline and launcher.poll() is None, run.read_status()
        time.sleep(0.2)
    os.kill(run.read_status()["pid"], signal.SIGTERM)
    output, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 3, output
    checkpoint = run.latest_checkpoint()
    stopped_at, saved_updates = int(checkpoint.name), server_saved(checkpoint)
    assert 80 <= stopped_at < STEPS and saved_updates > 0

    run_cli("harness.run", *RUN, cwd=tmp_path, timeout=400)
    status = json.loads(run.status.read_text())
    assert status["state"] == "done" and status["agent_step"] == STEPS
    sessions = json.loads(run.meta.read_text())["sessions"]
    assert len(sessions) == 2 and sessions[1]["start_step"] == 2 * stopped_at  # frames: action repeat 2
    metrics = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    after = [m for m in metrics if m["agent_step"] > stopped_at and "train/updates" in m]
    assert after and after[0]["train/updates"] > saved_updates  # the official counters came back
    # and its replay: a sequence item per stored step after the first 8 (batch length 8 + 1 context
    # step); a new replay would hold only the items of the few steps since the resume
    assert after[0]["replay/items"] >= stopped_at - 10
    assert all(np.isfinite(v) for m in metrics for k, v in m.items() if k.startswith("train/"))

    data = load_run(run.path)
    assert set(data.episodes["mode"]) >= {"final"} and data.episodes["score"].notna().all()
    assert data.runs.iloc[0]["method"] == "dreamerv3_official"


def test_the_server_dies_with_its_parent(tmp_path, official_python):
    parent = subprocess.Popen(SERVER, cwd=setup.REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        pid, scratch = parent.stdout.readline().split()
        server_pid = int(pid)
        assert alive(server_pid)
    finally:
        parent.kill()  # SIGKILL: nothing of the parent's code runs
        parent.wait()
    deadline = time.monotonic() + 10
    while alive(server_pid):
        assert time.monotonic() < deadline, f"the server {server_pid} outlived its SIGKILLed parent"
        time.sleep(0.1)
    assert not os.path.exists(scratch)


def test_a_dead_server_fails_with_its_output(official_python):
    config = OmegaConf.to_container(compose(["agent=dreamerv3_official"]).agent, resolve=True)
    config.update(size="1m", batch_size=2, batch_length=8)
    obs = gym.spaces.Dict({"position": gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)})
    agent = official_agent.OfficialDreamerAgent(config, obs, gym.spaces.Box(-1, 1, (1,), np.float32), 1, 0)
    step = {"position": np.zeros((1, 3), np.float32), "reward": np.zeros(1, np.float32),
            "is_first": np.ones(1, bool), "is_last": np.zeros(1, bool), "is_terminal": np.zeros(1, bool)}
    action, state = agent.act(step, None, "train")
    assert action.shape == (1, 1) and action.dtype == np.float32 and np.abs(action).max() <= 1
    os.kill(agent.server.process.pid, signal.SIGKILL)
    with pytest.raises(official_agent.OfficialServerError, match=r"exited with code -9 during 'act'.*"):
        agent.act(step, state, "train")
    agent.server.close()
    assert not os.path.exists(agent.server.scratch)


def test_the_official_replay_stores_the_policys_action(tmp_path, official_python):
    """As the official driver: the env gets the action clipped, the official replay the policy's own
    sample, zeroed at an episode's last step (read back from the chunk the server saves)."""
    config = OmegaConf.to_container(compose(["agent=dreamerv3_official"]).agent, resolve=True)
    config.update(size="1m", batch_size=2, batch_length=8)
    obs_space = gym.spaces.Dict({"position": gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)})
    agent = official_agent.OfficialDreamerAgent(config, obs_space, gym.spaces.Box(-1, 1, (2,), np.float32), 1, 0)
    rng, state, executed = np.random.default_rng(0), None, []
    for t in range(30):
        step = {"position": rng.normal(size=(1, 3)).astype(np.float32), "reward": np.zeros(1, np.float32),
                "is_first": np.array([t == 0]), "is_last": np.array([t == 29]), "is_terminal": np.zeros(1, bool)}
        action, state = agent.act(step, state, "train")
        agent.observe({**step, "action": action})
        agent.update()
        executed.append(action[0])
    agent.save(tmp_path)
    agent.server.close()
    (chunk,) = (tmp_path / "replay").glob("*.npz")
    stored = np.load(chunk)["action"]
    assert stored.shape == (30, 2) and np.abs(stored[:29]).max() > 1.0
    np.testing.assert_array_equal(np.clip(stored[:29], -1, 1), np.array(executed[:29]))
    np.testing.assert_array_equal(stored[29], np.zeros(2))


def test_a_missing_official_venv_names_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setattr(official_agent, "official_python", partial(setup.official_python, tmp_path / "no-venv"))
    with pytest.raises(ConfigError, match=r"run `python -m agents\.official\.setup` first"):
        make_plan(compose(["suite=dmc_proprio", "agent=dreamerv3_official", "task=cartpole_balance"]))
