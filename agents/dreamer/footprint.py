"""What a Dreamer run will hold, before it runs: the bytes of one replay step, the parameters and optimiser
state, and the replay's RAM and disk over the run (`python -m harness.run ... --plan`, harness/needs.py).

Computed from the agent config and the env's spaces without building the agent: a replay step holds what
`DreamerAgent.observe` stores (the observation keys the learner reads, the loop keys, the policy's action
as float32 and its latent `deter` and `stoch` as float32), and the train state's shapes come from
`jax.eval_shape` of the learner's init (traced, not compiled: under a second at size 200m).

The replay (replay.py) keeps chunks of `replay.chunk` steps of every env stream. `store: memory` holds
every chunk in RAM and writes each full chunk to the run directory once: disk = the replay. `store: disk`
writes full chunks to the run directory as they fill and maps them: RAM holds the open chunk (the OS page
cache is not counted), disk = the replay plus a frozen copy of its latents for the checkpoints. Either way
the two checkpoints kept (harness/rundir.py) each hold their own copy of the open chunk.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from agents.base import LOOP_KEYS
from agents.dreamer import config as dreamer_config
from agents.dreamer.learner import Learner
from agents.dreamer.replay import LATENTS

LOOP_DTYPES = {"reward": np.float32, "is_first": np.bool_, "is_last": np.bool_, "is_terminal": np.bool_}


def step_arrays(config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space) -> dict[str, tuple]:
    """(shape, dtype) of every key of one replay step of one env stream, as `DreamerAgent.observe` stores it."""
    return _step_arrays(_learner(config, obs_space, act_space), obs_space)


def _learner(config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space) -> Learner:
    """The learner on one device: shapes do not depend on the devices, and the machine that plans a run need
    not have the devices it will train on."""
    one = {**config, "devices": {"train": 1, "policy": "same"}}
    return Learner(dreamer_config.resolve(one), obs_space, act_space)


def _step_arrays(learner: Learner, obs_space: gym.spaces.Dict) -> dict[str, tuple]:
    arrays = {k: (obs_space[k].shape, np.dtype(obs_space[k].dtype)) for k in learner.spec}
    arrays.update({k: ((), np.dtype(LOOP_DTYPES[k])) for k in LOOP_KEYS})
    arrays["action"] = ((learner.policy.act_dim,), np.dtype(np.float32))  # one-hot for Discrete
    carry = jax.eval_shape(functools.partial(learner.initial_carry, 1))
    arrays.update({k: (carry[k].shape[1:], np.dtype(np.float32)) for k in LATENTS})
    return arrays


def nbytes(arrays: dict[str, tuple]) -> int:
    """The bytes of (shape, dtype) pairs, as step_arrays returns them."""
    return sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in arrays.values())


@dataclass(frozen=True)
class Footprint:
    """Bytes per agent step of the replay and of the train state, for one agent config and pair of spaces."""

    step_bytes: int  # one step of one env stream = one agent step
    latent_bytes: int  # of which deter and stoch
    params: int  # parameter count
    param_bytes: int
    state_bytes: int  # everything a checkpoint's agent.npz holds: parameters, optimiser, slow critic, ...


_FOOTPRINTS: dict[tuple[str, str, str], Footprint] = {}  # a plan's tasks mostly share config and spaces


def footprint(config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space) -> Footprint:
    """The footprint of an agent config (unresolved, as the run config holds it) on these spaces."""
    key = (json.dumps(config, sort_keys=True, default=str), repr(obs_space), repr(act_space))
    if key not in _FOOTPRINTS:
        learner = _learner(config, obs_space, act_space)
        arrays = _step_arrays(learner, obs_space)
        state = jax.eval_shape(learner.init, jax.random.PRNGKey(0))
        params = jax.tree.leaves(state["params"])
        _FOOTPRINTS[key] = Footprint(
            step_bytes=nbytes(arrays), latent_bytes=nbytes({k: arrays[k] for k in LATENTS}),
            params=sum(x.size for x in params), param_bytes=sum(x.size * x.dtype.itemsize for x in params),
            state_bytes=sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)))
    return _FOOTPRINTS[key]


@dataclass(frozen=True)
class ReplayNeeds:
    store: str
    steps: int  # agent steps in the chunks held at the peak
    chunk: int  # steps per env stream in one chunk
    chunk_bytes: int  # one chunk: every env stream's `chunk` steps
    ram: int  # peak bytes in RAM (the OS page cache of store=disk not counted)
    disk: int  # peak bytes in the run directory
    checkpoint_bytes_per_step: int  # what a checkpoint writes per agent step collected since the previous one


def replay_needs(config: dict[str, Any], fp: Footprint, budget: int) -> ReplayNeeds:
    """The replay at its largest in a run of `budget` agent steps: the chunks that hold min(capacity, budget).

    Reset steps (one per episode, not counted in the budget) are stored too: a few per cent more where
    episodes are short and the budget is below the capacity."""
    replay, envs = config["replay"], int(config["envs"])
    chunk, store = int(replay["chunk"]), replay["store"]
    per_stream = max(int(config["batch_length"]) + 1, int(replay["capacity"]) // envs)  # as Replay's `cap`
    # a chunk goes once wholly older than the capacity: at capacity, the steps of ceil(cap / chunk) chunks
    # and the one just opened
    chunks = min(math.ceil(budget / envs / chunk), math.ceil(per_stream / chunk) + 1)
    steps, chunk_bytes = chunks * chunk * envs, chunk * envs * fp.step_bytes
    size = steps * fp.step_bytes
    if store == "disk":
        return ReplayNeeds(store, steps, chunk, chunk_bytes, ram=chunk_bytes,
                           disk=size + chunk_bytes + steps * fp.latent_bytes, checkpoint_bytes_per_step=fp.latent_bytes)
    return ReplayNeeds(store, steps, chunk, chunk_bytes, ram=size, disk=size + chunk_bytes,
                       checkpoint_bytes_per_step=fp.step_bytes)
