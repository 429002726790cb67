"""A DreamerV3 run stopped by SIGTERM resumes through the CLI with its updates, replay and counters.

The agent-level test (test_dreamer_agent.py) shows a restored agent continues bit for bit on the same
data; here the whole path runs: the loop checkpoints on SIGTERM, the rerun restores the agent with its
replay, and the resumed session adds the updates the train ratio owes to the saved ones. (The env
episode in progress at the stop is lost, so the rest of the run differs from an uninterrupted one.)
"""

import json
import os
import signal
import subprocess
import sys
import time

from harness.rundir import RunDir

STEPS = 1000
UPDATES_PER_STEP = 0.5  # train ratio 32 / (batch 4 x length 16)
RUN = ("suite=classic", "task=CartPole-v1", "agent=dreamerv3", f"steps={STEPS}", "agent.size=1m",
       "agent.train_ratio=32", "agent.batch_size=4", "agent.batch_length=16", "agent.train_after=100", "run.checkpoint_every=1",
       "run.log_every=1", "suite.protocol.eval_every=100000", "suite.protocol.final_eval_episodes=1")


def agent_counters(checkpoint) -> dict:
    return json.loads((checkpoint / "agent" / "agent.json").read_text())


def test_sigterm_then_rerun_continues_the_dreamer_run(tmp_path, run_cli):
    run = RunDir(tmp_path / "stopped/classic/dreamerv3/CartPole-v1/seed0")
    launcher = subprocess.Popen([sys.executable, "-m", "harness.run", *RUN, "root=stopped"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not (run.read_status().get("agent_step", 0) >= 400 and run.latest_checkpoint()):
        assert time.monotonic() < deadline and launcher.poll() is None, run.read_status()
        time.sleep(0.1)
    os.kill(run.read_status()["pid"], signal.SIGTERM)
    output, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 3, output
    checkpoint = run.latest_checkpoint()
    stopped_at, saved = int(checkpoint.name), agent_counters(checkpoint)
    assert 400 <= stopped_at < STEPS and saved["updates"] > 0

    run_cli("harness.run", *RUN, "root=stopped", cwd=tmp_path, timeout=600)
    status = json.loads(run.status.read_text())
    assert status["state"] == "done" and status["agent_step"] == STEPS
    sessions = json.loads(run.meta.read_text())["sessions"]
    assert len(sessions) == 2 and sessions[1]["start_step"] == stopped_at
    resumed = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    after = [r for r in resumed if r["step"] > stopped_at and "train/updates" in r]
    assert after and after[0]["train/updates"] > saved["updates"]  # updates continue, not restart
    assert after[0]["replay/steps"] > saved["agent_steps"]  # the replay came back with the agent
    final = agent_counters(run.latest_checkpoint())
    owed = UPDATES_PER_STEP * (final["agent_steps"] - saved["agent_steps"])
    assert abs(final["updates"] - saved["updates"] - owed) <= 1
