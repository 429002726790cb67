"""The official DreamerV3 (dreamer 3.3.1, `dreamerv3.agent.Agent`) as a side of the peer bench.

Runs in .venv-official (agents/official/setup.py puts the code on its path). The agent is built the way
`dreamerv3/main.py` builds it, from the official configs.yaml with the point's `size*` block (and `cpu`:
float32, no preallocation, when not on a GPU, where the official default is bfloat16).
"""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any

import elements
import jax
import numpy as np
import ruamel.yaml as yaml

import dreamerv3
import dreamerv3.agent as official_agent
from embodied.jax import internal

from harness.bench_peers.protocol import serve

# Observation and action spaces as the official DMC proprio and Crafter envs give them.
SPACES = {
    "dmc_cartpole": ({"position": elements.Space(np.float32, (3,)), "velocity": elements.Space(np.float32, (2,))},
                     {"action": elements.Space(np.float32, (1,), -1.0, 1.0)}),
    "crafter": ({"image": elements.Space(np.uint8, (64, 64, 3))},
                {"action": elements.Space(np.int32, (), 0, 17)}),
}
LOOP_SPACES = {"reward": elements.Space(np.float32), "is_first": elements.Space(bool),
               "is_last": elements.Space(bool), "is_terminal": elements.Space(bool)}


def _random(space: elements.Space, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if space.dtype == np.uint8 or space.discrete and space.dtype != bool:
        return rng.integers(space.low, space.high, shape + space.shape).astype(space.dtype)
    if space.dtype == bool:
        return np.zeros(shape + space.shape, bool)
    return rng.normal(size=shape + space.shape).astype(space.dtype)


class Official:
    def __init__(self, point: dict[str, Any]):
        folder = pathlib.Path(dreamerv3.__file__).parent
        configs = yaml.YAML(typ="safe").load((folder / "configs.yaml").read_text())
        config = elements.Config(configs["defaults"]).update(configs[f"size{point['size']}"])
        if jax.default_backend() == "cpu":
            config = config.update(configs["cpu"])  # the platform, and float32 (the bench's CPU dtype)
        elif point["dtype"] == "float32":
            config = config.update({"jax.compute_dtype": "float32"})
        config = config.update({"batch_size": point["batch"], "batch_length": point["length"]})
        obs, act = SPACES[point["task"]]
        self.logdir = tempfile.TemporaryDirectory()
        self.agent = official_agent.Agent({**obs, **LOOP_SPACES}, act, elements.Config(
            **config.agent, logdir=self.logdir.name, seed=0, jax=dict(config.jax, precompile=False),
            batch_size=config.batch_size, batch_length=config.batch_length,
            replay_context=config.replay_context, report_length=config.report_length, replica=0, replicas=1))
        self.dtype = config.jax.compute_dtype
        rng = np.random.default_rng(0)
        B, L = point["batch"], point["length"] + config.replay_context
        # Sampling is outside the timing on every side: one batch of the replay's layout (every key of
        # agent.spaces, the context latents included), on the device beforehand.
        data = {k: _random(s, (B, L), rng) for k, s in self.agent.spaces.items()}
        self.batch = internal.device_put(data, self.agent.train_sharded)
        self.carry = self.agent.init_train(B)
        self.obs = {k: _random(s, (1,), rng) for k, s in {**obs, **LOOP_SPACES}.items()}
        self.policy_carry = self.agent.init_policy(1)

    def update(self) -> None:
        seed = self.agent._seeds(0, self.agent.train_mirrored)
        self.carry, _, _ = self.agent.train(self.carry, {**self.batch, "seed": seed})
        jax.block_until_ready((self.agent.params, self.carry))

    def policy_step(self) -> None:
        self.policy_carry, _, _ = self.agent.policy(self.policy_carry, self.obs, mode="train")

    def info(self) -> dict[str, Any]:
        device = jax.devices()[0]
        return {"device": device.device_kind, "platform": device.platform, "dtype": self.dtype,
                "threads": "XLA default (all cores)", "version": f"dreamer 3.3.1, jax {jax.__version__}"}


if __name__ == "__main__":
    serve(Official)
