"""Our DreamerV3 (agents/dreamer) as a side of the peer bench; runs in the project's venv."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from agents.dreamer.bench import TASKS, make_agent, random_step
from agents.dreamer.learner import _train_step
from harness.bench_peers.protocol import serve


class Ours:
    def __init__(self, point: dict[str, Any]):
        task = point["task"]
        self.agent = make_agent(task, point["size"], batch_size=point["batch"], batch_length=point["length"],
                                compute_dtype="float32" if point["dtype"] == "float32" else "auto")
        self.obs_space = TASKS[task][0]
        rng = np.random.default_rng(0)
        state = None
        for t in range(point["length"] + 2):  # enough replay for one sequence
            obs = random_step(self.agent, self.obs_space, rng, t)
            action, state = self.agent.act(obs, state, "train")
            self.agent.observe({**obs, "action": action})
        self.obs, self.state = random_step(self.agent, self.obs_space, rng, 1), state
        # Sampling is outside the timing on every side: one batch, sampled and on the device beforehand.
        self.batch, _, _ = self.agent._sample()
        self.flops = _flops(self.agent, self.batch)

    def update(self) -> None:
        metrics, latents = self.agent._start_update(self.batch)  # compiles on its first call
        jax.block_until_ready((self.agent.state, metrics, latents))

    def policy_step(self) -> None:
        action, self.state = self.agent.act(self.obs, self.state, "train")
        jax.block_until_ready(self.state)

    def info(self) -> dict[str, Any]:
        device = jax.devices()[0]
        return {"flops": self.flops, "device": device.device_kind, "platform": device.platform,
                "dtype": self.agent.learner.cfg["compute_dtype"], "threads": "XLA default (all cores)",
                "version": f"jax {jax.__version__}"}


def _flops(agent, batch: dict) -> float | None:
    """XLA's estimate of the floating-point operations of one train step (from the lowered HLO, no
    compilation); the update computes the same on every side, so it is the numerator of every MFU."""
    lowered = _train_step.lower(agent.learner, agent.state, batch, jax.random.PRNGKey(0))
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


if __name__ == "__main__":
    serve(Ours)
