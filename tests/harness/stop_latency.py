"""Measure how long a run takes to honour SIGTERM: `python tests/harness/stop_latency.py [case ...]`.

A stop is honoured between loop steps, so its latency is the longest step plus the checkpoint: at the
start of a run that is the JIT compile of the policy and the train step (Dreamer compiles its train
step when replay first holds `train_after` steps). Each case starts
`harness.run` as a user would, sends SIGTERM to the launcher `delay` seconds after the worker entered
its loop (DELAYS: early ones land in a compile, late ones in training), and times the launcher's
exit. Prints one line per case and delay; the figures feed launcher.signal_delay_s (README,
"Reliability"). Timings on a shared machine are rough.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.rundir import RunDir

# train_after=64: the train step compiles a few seconds in, where the early stop lands
CASES = {
    "ppo-classic": ("suite=classic", "task=CartPole-v1", "agent=ppo", "agent.envs=1", "steps=100000"),
    "dreamerv3-1m-classic": ("suite=classic", "task=CartPole-v1", "agent=dreamerv3", "agent.size=1m",
                             "agent.train_after=64", "steps=100000"),
    "dreamerv3-12m-classic": ("suite=classic", "task=CartPole-v1", "agent=dreamerv3", "agent.size=12m",
                              "agent.train_after=64", "steps=100000"),
    "dreamerv3_2023-crafter": ("suite=crafter", "agent=dreamerv3_2023", "agent.train_ratio=8",
                               "agent.train_after=64", "steps=1200"),
}
DELAYS = (3.0, 40.0)  # seconds after the loop starts: in the policy's compile; in the train step's or training


def measure(args: tuple[str, ...], delay: float) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as root:
        launcher = subprocess.Popen([sys.executable, "-m", "harness.run", *args, f"root={root}",
                                     "run.checkpoint_every=100000"], stdout=subprocess.DEVNULL)
        run = None
        while run is None or not (run.lock.holder_if_held() and run.read_status().get("state") == "running"):
            time.sleep(0.05)
            dirs = [p.parent for p in Path(root).rglob("config.yaml")]
            run = RunDir(dirs[0]) if dirs else None
            if launcher.poll() is not None:
                raise RuntimeError(f"{args} ended before the stop")
        time.sleep(delay)
        sent = time.monotonic()
        launcher.terminate()
        launcher.wait()
        latency = time.monotonic() - sent
        status, checkpoint = run.read_status(), run.latest_checkpoint()
        counters = checkpoint / "agent/agent.json" if checkpoint else None
        updates = json.loads(counters.read_text())["updates"] if counters and counters.exists() else "-"
        return latency, f"{status['state']} at agent step {status.get('agent_step')}, {updates} updates"


def main(names: list[str]) -> None:
    for name in names or CASES:
        for delay in DELAYS:
            latency, outcome = measure(CASES[name], delay)
            print(f"{name:24s} SIGTERM {delay:4.0f} s in: stop latency {latency:6.1f} s ({outcome})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
