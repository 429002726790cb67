"""The multi-device side of test_devices.py: one process with 4 simulated CPU devices runs every check and
prints its figures as one JSON line; the test asserts on them.

    PYTHONPATH=. python tests/dreamer/devices_side.py <checkpoint dir>    # from the repository root

XLA reads the simulated device count when jax first initialises its backend, so it is set before jax is
imported, which is why these checks run in a process of their own.
"""

from __future__ import annotations

import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_dreamer_agent import VECTOR, drive, tiny_config  # noqa: E402
from test_v3_reference import OBS_SPACE, fixed_batch  # noqa: E402

from agents.dreamer import config as dreamer_config  # noqa: E402
from agents.dreamer.agent import DreamerAgent  # noqa: E402
from agents.dreamer.learner import Learner  # noqa: E402

ACT = gym.spaces.Discrete(3)
UPDATES = 3


def config(train: int, policy: str = "same") -> dict[str, Any]:
    """The tiny agent with a learning rate that moves the parameters from the first update (no warmup)."""
    cfg = tiny_config(devices={"train": train, "policy": policy})
    cfg["optimizer"].update(lr=1e-3, warmup=0)
    return cfg


def conditioned(state: dict) -> dict:
    """The state with random reward, value and slow-value outputs on the central twohot bins and a bias of
    -30 on the outer ones, as test_v3_reference gives them. At init they are zero, which leaves the returns
    and their percentiles zero; and while the outer bins share a logit the heads' mean cancels terms of
    +-1e6 and its rounding noise (about 0.1) differs with the batch's layout in memory, so the critic's
    gradient and, through LaProp's normalisation, its update differ by up to the learning rate between
    device counts (measured: 1.5e-3 after one update at lr 1e-3; 1e-9 with these heads)."""
    state = jax.tree.map(jnp.asarray, state)
    for seed, head in enumerate((state["params"]["rew"], state["params"]["val"], state["slow_val"]), start=2):
        w = head["out"]["w"]
        central = np.abs(np.arange(w.shape[-1]) - w.shape[-1] // 2) <= 10
        head["out"]["w"] = 0.3 * jax.random.normal(jax.random.PRNGKey(seed), w.shape) * central
        head["out"]["b"] = jnp.where(central, 0.0, -30.0)
    return state


def leaves(tree: Any) -> list[np.ndarray]:
    return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def replicated_on(tree: Any, devices: set) -> bool:
    """Whether every leaf is a whole copy on each of `devices` and on no other."""
    return all(x.sharding.is_fully_replicated and x.sharding.device_set == devices for x in jax.tree.leaves(tree))


def max_diffs(a: Any, b: Any) -> dict[str, float]:
    """Largest absolute difference over the leaves, and largest relative to each leaf's largest magnitude."""
    pairs = list(zip(leaves(a), leaves(b)))
    return {"abs": max(float(np.max(np.abs(x - y), initial=0.0)) for x, y in pairs),
            "rel": max(float(np.max(np.abs(x - y), initial=0.0) / max(np.max(np.abs(x), initial=0.0), 1e-30))
                       for x, y in pairs)}


def updates_on(train: int) -> dict[str, Any]:
    """UPDATES train steps on `train` devices from the same state, batch and keys as on any other count."""
    cfg = dreamer_config.resolve(config(train))
    learner = Learner(cfg, OBS_SPACE, ACT)
    place = learner.place
    state = jax.device_put(conditioned(learner.init(jax.random.PRNGKey(0))), place.replicated)
    data = jax.device_put(fixed_batch(learner, cfg, B=cfg["batch_size"], T=cfg["batch_length"]), place.batch)
    states, metrics = [jax.tree.map(np.asarray, state)], []  # before each update and after the last
    for i in range(UPDATES):
        state, step_metrics, latents = learner.train_step(state, data, jax.random.PRNGKey(10 + i))
        states.append(jax.tree.map(np.asarray, state))
        metrics.append({k: float(v) for k, v in step_metrics.items()})
    train_devices = {d.id for d in place.mesh.devices.flat}
    placed = {
        "state_replicated": replicated_on(state, set(place.mesh.devices.flat)),
        "latents_split": [len(x.sharding.device_set) == train and not x.sharding.is_fully_replicated
                          for x in jax.tree.leaves(latents)] == [train > 1] * len(jax.tree.leaves(latents)),
        "train_devices": sorted(train_devices),
    }
    return {"states": states, "metrics": metrics, "placed": placed}


def equality() -> dict[str, Any]:
    """Per device count: differences to the 1-device run after the first and after the last update."""
    runs = {n: updates_on(n) for n in (1, 2, 4)}
    one = runs[1]
    out = {"ret_range": float(one["states"][1]["retnorm"]["hi"] - one["states"][1]["retnorm"]["lo"]),
           "placed": {n: run["placed"] for n, run in runs.items()}}
    for n in (2, 4):
        out[n] = {}
        for when, i in (("first", 1), ("last", UPDATES)):
            ours, theirs = one["metrics"][i - 1], runs[n]["metrics"][i - 1]
            out[n][when] = {
                "loss": ours["loss/total"], "loss_abs": abs(theirs["loss/total"] - ours["loss/total"]),
                "metrics_rel": max(abs(theirs[k] - ours[k]) / max(abs(ours[k]), 1e-6) for k in ours),
                "params": max_diffs(one["states"][i]["params"], runs[n]["states"][i]["params"]),
                "retnorm": max_diffs(one["states"][i]["retnorm"], runs[n]["states"][i]["retnorm"]),
                "moved": max_diffs(one["states"][i]["params"], one["states"][i - 1]["params"])["abs"],
            }
    return out


def checkpoints(directory: Path) -> dict[str, Any]:
    """A checkpoint written on 4 devices resumes on 1, 2 and 4, and the three continue alike."""
    writer = DreamerAgent(config(4), VECTOR, ACT, 1, seed=7)
    writer.state = jax.device_put(conditioned(writer.state), writer.learner.place.replicated)
    drive(writer, VECTOR, 24)
    writer.save(directory)
    saved = writer.counters["updates"]
    resumed = {}
    for n in (1, 2):
        agent = DreamerAgent(config(n), VECTOR, ACT, 1, seed=7)
        agent.load(directory)
        loaded = replicated_on(agent.state, set(agent.learner.place.mesh.devices.flat))
        same = all(np.array_equal(x, y) for x, y in zip(leaves(agent.state), leaves(writer.state)))
        drive(agent, VECTOR, 12, start=24)
        resumed[n] = {"loaded_replicated": loaded, "loaded_equal": same, "agent": agent}
    drive(writer, VECTOR, 12, start=24)
    return {"saved_updates": saved, "updates": writer.counters["updates"],
            **{n: {"loaded_replicated": r["loaded_replicated"], "loaded_equal": r["loaded_equal"],
                   "updates": r["agent"].counters["updates"],
                   "params": max_diffs(writer.state["params"], r["agent"].state["params"])}
               for n, r in resumed.items()}}


def own_policy_device() -> dict[str, Any]:
    """`policy: last` acts on the last local device, on a copy of the parameters refreshed after updates."""
    agent = DreamerAgent(config(2, "last"), VECTOR, ACT, 1, seed=0)
    metrics = drive(agent, VECTOR, 20)
    obs = {"state": np.zeros((1, 4), np.float32), "is_first": np.array([True])}
    action, carry = agent.act(obs, None, "eval")
    copy = agent._policy_params
    return {"updates": metrics["train/updates"], "action": int(action[0]),
            "policy_devices": sorted({d.id for x in jax.tree.leaves(copy) for d in x.sharding.device_set}),
            "carry_devices": sorted({d.id for x in jax.tree.leaves(carry) for d in x.sharding.device_set}),
            "copy_is_current": all(np.array_equal(x, y) for x, y in zip(leaves(copy), leaves(agent.state["params"]))),
            "train_devices": sorted(d.id for d in agent.learner.place.mesh.devices.flat)}


if __name__ == "__main__":
    figures = {"local_devices": len(jax.local_devices()), "equality": equality(),
               "checkpoints": checkpoints(Path(sys.argv[1])), "policy": own_policy_device()}
    print(json.dumps(figures))
