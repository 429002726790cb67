"""Killing a run at any moment loses nothing: resume continues the step count and the episode record."""

import json
import os
import signal
import subprocess
import sys
import time

from harness.rundir import RunDir
from record_checks import check_metrics_in_order, check_sessions_continue, read_scores, training_episodes_cut

RUN = ("task=CartPole-v1", "steps=150000", "run.checkpoint_every=0.5", "run.log_every=1",
       "suite.protocol.eval_every=50000", "suite.protocol.eval_episodes=2", "suite.protocol.final_eval_episodes=3",
       "root=r")


def start(tmp_path):
    return subprocess.Popen([sys.executable, "-m", "harness.run", *RUN], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for_progress(run: RunDir, min_step: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run.read_status()
        if status.get("state") == "running" and status.get("agent_step", 0) >= min_step and run.latest_checkpoint():
            return status
        time.sleep(0.05)
    raise AssertionError(f"no progress: {run.read_status()}")


def check_complete_record(run: RunDir, resumes: int) -> None:
    status = json.loads(run.status.read_text())
    assert status["state"] == "done" and status["agent_step"] == 150000
    scores = read_scores(run)
    assert training_episodes_cut(scores) <= resumes
    periodic = [s for s in scores if s["mode"] == "eval" and not s["final"]]
    assert sorted(s["step"] for s in periodic) == [50000, 50000, 100000, 100000]
    assert sum(s["final"] for s in scores) == 3
    check_metrics_in_order(run)
    sessions = check_sessions_continue(run)
    assert len(sessions) == resumes + 1
    # each interrupted session stopped short of the budget and left a checkpoint to resume from
    assert all(earlier["end_step"] < 150000 for earlier in sessions[:-1])
    assert all(later["start_step"] > 0 for later in sessions[1:])


def test_sigterm_checkpoints_and_rerun_continues(tmp_path, run_cli):
    run = RunDir(tmp_path / "r/classic/random/CartPole-v1/seed0")
    launcher = start(tmp_path)
    status = wait_for_progress(run, 20000)
    os.kill(status["pid"], signal.SIGTERM)
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 3, output
    stopped = run.read_status()
    assert stopped["state"] == "preempted"
    checkpoint_step = int(run.latest_checkpoint().name)
    assert checkpoint_step == stopped["agent_step"] and 20000 <= checkpoint_step < 150000

    run_cli("harness.run", *RUN, cwd=tmp_path)
    check_complete_record(run, resumes=1)
    assert json.loads(run.meta.read_text())["sessions"][1]["start_step"] == checkpoint_step


def test_sigkill_resumes_from_last_periodic_checkpoint(tmp_path, run_cli):
    run = RunDir(tmp_path / "r/classic/random/CartPole-v1/seed0")
    launcher = start(tmp_path)
    status = wait_for_progress(run, 30000)
    os.kill(status["pid"], signal.SIGKILL)
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 1 and "FAILED" in output and "-9" in output
    assert run.read_status()["state"] == "failed"
    run_cli("harness.run", *RUN, cwd=tmp_path)
    check_complete_record(run, resumes=1)


def test_ctrl_c_stops_jobs_cleanly_with_checkpoints(tmp_path, run_cli):
    run = RunDir(tmp_path / "r/classic/random/CartPole-v1/seed0")
    launcher = start(tmp_path)
    wait_for_progress(run, 20000)
    launcher.send_signal(signal.SIGINT)
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 130 and "rerun the same command to resume" in output
    assert run.read_status()["state"] == "preempted"
    run_cli("harness.run", *RUN, cwd=tmp_path)
    check_complete_record(run, resumes=1)


def test_sigterm_with_envs_in_worker_processes(tmp_path, run_cli):
    """Env subprocesses ignore the stop signal; the run's process checkpoints and closes them."""
    args = ("task=Acrobot-v1", "agent.envs=3", "steps=60000", "run.checkpoint_every=0.5",
            "suite.protocol.final_eval_episodes=3", "root=r")
    run = RunDir(tmp_path / "r/classic/random/Acrobot-v1/seed0")
    launcher = subprocess.Popen([sys.executable, "-m", "harness.run", *args], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    status = wait_for_progress(run, 3000)
    os.kill(status["pid"], signal.SIGTERM)
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 3, output
    assert run.read_status()["state"] == "preempted" and "Traceback" not in run.log.read_text()
    run_cli("harness.run", *args, cwd=tmp_path)
    status = run.read_status()
    assert status["state"] == "done" and 60000 <= status["agent_step"] < 60003
    scores = read_scores(run)
    assert sum(s["final"] for s in scores) == 3
    assert all(s["episode/length"] <= 500 for s in scores)  # Acrobot-v1's time limit


def test_diverging_run_fails_and_keeps_its_last_good_checkpoint(tmp_path, run_cli):
    """A real divergence: PPO with an absurd learning rate turns its parameters into NaN."""
    result = run_cli("harness.run", "agent=ppo", "task=CartPole-v1", "steps=20000", "agent.discrete.lr=1e30",
                     "run.checkpoint_every=0.05", "root=r", cwd=tmp_path, check=False)
    assert result.returncode == 1
    run = RunDir(tmp_path / "r/classic/ppo/CartPole-v1/seed0")
    status = run.read_status()
    assert status["state"] == "failed" and "nan" in status["error"].lower()
    assert len(status["error"]) <= 300 and "Traceback" in status["traceback"]
    checkpoint = run.latest_checkpoint()
    assert checkpoint is not None and int(checkpoint.name) < 20000
    assert (checkpoint / "agent").is_dir() and any((checkpoint / "agent").iterdir())
