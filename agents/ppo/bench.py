"""Speed figures of the PPO agent for `python -m harness.bench` (or `python -m agents.ppo.bench [quick]`).

PPO runs through the whole loop, as a user's run does: the suite's envs (in worker processes when
there are several), acting, rollout updates, logs; no evaluation and no checkpoints in between. The
figure is the loop's own `fps/env` (agent steps per second from its first to its last step), so the
PPO updates are included at their real rate. Settings are the suite's PPO settings
(`agent_suite/ppo_<suite>.yaml`); the device is the agent's `device=auto`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

CASES = [
    # suite, task, agent steps (quick, full): whole rollouts, at least two updates; agent overrides
    ("classic", "CartPole-v1", 8_192, 65_536, []),  # 4 envs x 128 steps per update
    ("atari26", "pong", 2_048, 8_192, []),  # 8 envs x 128 steps per update
    ("atari26", "pong", 2_048, 8_192, ["agent.precision=bfloat16"]),
]


def loop_steps_per_second(
    suite: str, task: str, steps: int, overrides: list[str], root: Path
) -> tuple[float, dict[str, Any]]:
    """Agent steps/s of PPO through the loop, and the run's resolved agent settings."""
    from harness import loop
    from harness.plan import compose, make_plan
    from harness.rundir import RunDir
    from harness.run import prepare

    cfg = compose([f"suite={suite}", "agent=ppo", f"task={task}", f"steps={steps}", f"root={root}",
                   "suite.protocol.eval_every=0", "suite.protocol.final_eval_episodes=0",
                   "run.log_every=1e9", "run.checkpoint_every=1e9", *overrides])
    (spec,) = make_plan(cfg)
    prepare(spec, "new")
    run = RunDir(spec.run_dir)
    loop.train(run, threading.Event())
    last = json.loads(run.metrics.read_text().splitlines()[-1])
    meta = json.loads((spec.run_dir / "meta.json").read_text())
    return last["fps/env"], {**spec.config["agent"], "device_used": meta.get("device")}


def figures(quick: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for case, (suite, task, quick_steps, full_steps, overrides) in enumerate(CASES):
            steps = quick_steps if quick else full_steps
            fps, agent = loop_steps_per_second(suite, task, steps, overrides, Path(root) / str(case))
            rollout = agent["discrete"]["rollout"]
            rows.append({
                "name": f"ppo {suite}/{task} through the loop, {agent['precision']}",
                "value": fps,
                "unit": "agent steps/s",
                "notes": f"{agent['envs']} envs x {rollout} steps per update, {agent['discrete']['epochs']} epochs, "
                         f"{steps} agent steps, updates included; {agent['device_used']}",
            })  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in figures(quick="quick" in sys.argv[1:]):
        print(f"{row['name']:45s} {row['value']:>10.4g} {row['unit']}  {row['notes']}")
