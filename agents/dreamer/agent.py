"""DreamerAgent: the Agent protocol (agents/base.py) around the Learner and the Replay.

`act` runs the jitted, env-batched policy step; `observe` stores the step with the policy's latent and action;
`update` performs the gradient updates the train ratio owes (train_ratio / (batch * length) per agent
step, fractions carried over), sampling the next batch on the host while the current update runs.
The train state lives replicated on the train devices of `agent.devices` and each batch is split over them
(devices.py); a policy on a device of its own acts on a copy of the parameters, refreshed after updates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from agents.base import LOOP_KEYS
from agents.dreamer import config as dreamer_config
from agents.dreamer.explore import Exploration
from agents.dreamer.learner import Learner
from agents.dreamer.replay import Replay


class DreamerAgent:
    def __init__(
        self, config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space, num_envs: int, seed: int,
        workdir: Path | None = None,
    ):
        self.cfg = dreamer_config.resolve(config)
        self.num_envs = num_envs
        self.discrete = isinstance(act_space, gym.spaces.Discrete)
        self.learner = Learner(self.cfg, obs_space, act_space)
        self.keys = [k for k in self.learner.spec] + list(LOOP_KEYS)
        self.batch, self.length = int(self.cfg["batch_size"]), int(self.cfg["batch_length"])
        replay = self.cfg["replay"]
        self.replay = Replay(replay["capacity"], num_envs, self.length + 1, replay["online"], seed,
                             chunk=replay["chunk"], store=replay["store"],
                             directory=workdir and Path(workdir) / "replay")
        key, self.key = jax.random.split(jax.random.PRNGKey(seed))
        self.state = jax.device_put(self.learner.init(key), self.learner.place.replicated)
        self._policy_params: dict | None = None  # the copy on the policy's own device, None once stale
        train_devices = list(self.learner.place.mesh.devices.flat)  # meta.json's device (harness/logs.py)
        self.device = (f"gpu: {train_devices[0].device_kind} x{len(train_devices)}"
                       if train_devices[0].platform == "gpu" else "cpu")
        self.counters = {"updates": 0, "agent_steps": 0, "owed": 0.0}
        self._compiled = False  # whether this process has compiled the train step (see _start_update)
        self._taken: dict[str, np.ndarray] | None = None  # the train policy's latent and action, for `observe`
        explore = self.cfg.get("explore")  # V1/V2: random prefill and action noise (explore.py)
        self.explore = explore and Exploration(**explore, prefill_steps=self.cfg["train_after"],
                                               discrete=self.discrete, seed=seed)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        dreamer_config.validate(config)

    def _next_key(self) -> jax.Array:
        self.key, key = jax.random.split(self.key)
        return key

    # ----- acting ----------------------------------------------------------------------------------

    def act(self, obs: dict[str, np.ndarray], state: Any, mode: str) -> tuple[np.ndarray, Any]:
        if state is None:
            state = self.learner.initial_carry(len(obs["is_first"]))
        inputs = {k: obs[k] for k in self.learner.spec}
        inputs["is_first"] = np.asarray(obs["is_first"])
        greedy = mode == "eval" and self.cfg["eval_policy"] == "mode"
        state, action = self.learner.policy_step(self._acting_params(), state, inputs, self._next_key(), greedy)
        action = np.asarray(action)
        if mode == "train" and self.explore:
            action = self.explore(action, self.counters["agent_steps"])
            state = {**state, "prevact": jnp.asarray(action)}  # the filter continues from the executed action
        if mode == "train":
            # What `observe` stores with the step, as the official driver: the replay context (float32, as
            # `RSSM.entry_space`) and the policy's own action, which the filter continues from; only the
            # env gets it clipped to the action space.
            self._taken = {k: np.asarray(state[k], np.float32) for k in ("deter", "stoch")}
            self._taken["action"] = action.astype(np.float32)
        if self.discrete:
            return action.argmax(-1).astype(np.int64), state
        return np.clip(action, -1.0, 1.0).astype(np.float32), state

    def _acting_params(self) -> dict:
        """The parameters on the policy's device: the train state's own where that is the policy's one
        device; else a copy, made at the first act after an update."""
        place = self.learner.place
        if place.policy_shares_state:
            return self.state["params"]
        if self._policy_params is None:
            self._policy_params = jax.device_put(self.state["params"], place.policy)
        return self._policy_params

    def observe(self, step: dict[str, np.ndarray]) -> None:
        if self._taken is None:
            raise RuntimeError("observe() needs a preceding act(..., mode='train') on the same obs")
        entry = {k: np.asarray(step[k]) for k in self.keys}
        entry.update(self._taken)
        self._taken = None
        self.replay.add(entry)
        self.counters["agent_steps"] += self.num_envs

    # ----- learning --------------------------------------------------------------------------------

    def _ready(self) -> bool:
        """After a random prefill (V1/V2, V3-2023), train once the replay holds its `train_after` steps;
        without one (V3), once the replay holds `train_after` windows to sample, one per stored step that
        ends a full window of its env's stream, which is what the official replay's len() counts
        (the 2024 code's replay): with 4 envs and windows of 65 steps, 256 agent steps later than 1024 steps would be."""
        if self.explore and self.explore.random_prefill:
            return self.replay.count >= self.length + 1 and len(self.replay) >= self.cfg["train_after"]
        return self.num_envs * max(0, self.replay.count - self.length) >= self.cfg["train_after"]  # windows: length + 1

    def update(self) -> dict[str, float]:
        if not self._ready():
            return {}
        if not self.counters["updates"]:  # V1/V2 `pretrain` updates right after the prefill
            self.counters["owed"] += self.cfg.get("pretrain", 0)
        self.counters["owed"] += self.num_envs * self.cfg["train_ratio"] / (self.batch * self.length)
        todo = int(self.counters["owed"])
        self.counters["owed"] -= todo
        if not todo:
            return {}
        metrics = None
        pending = self._sample()
        for i in range(todo):
            batch, envs, starts = pending
            metrics, latents = self._start_update(batch)
            if i + 1 < todo:
                pending = self._sample()  # host work overlaps the update, which runs asynchronously
            self.replay.write_latents(envs, starts, jax.tree.map(np.asarray, latents))
            self.counters["updates"] += 1
        out = {f"train/{k}": float(v) for k, v in metrics.items()}
        out["train/updates"] = float(self.counters["updates"])
        out["replay/steps"] = float(len(self.replay))
        return out

    def _start_update(self, batch: dict[str, jax.Array]) -> tuple[dict, dict]:
        """Dispatch one train step (it runs asynchronously); returns its metrics and latents."""
        key = self._next_key()
        if not self._compiled:
            self.learner.compile_train_step(self.state, batch, key)
            self._compiled = True
        self.state, metrics, latents = self.learner.train_step(self.state, batch, key)
        self._policy_params = None
        return metrics, latents

    def _sample(self) -> tuple[dict[str, jax.Array], np.ndarray, np.ndarray]:
        data, envs, starts = self.replay.sample(self.batch)
        return jax.device_put(self.train_batch(data), self.learner.place.batch), envs, starts

    def train_batch(self, windows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The train step's input from replay windows (batch, length + 1, ...): the stored steps, and the
        latent stored at each window's first step, which starts the filter."""
        batch = {k: windows[k] for k in self.keys + ["action"]}
        batch["deter"], batch["stoch"] = windows["deter"][:, 0], windows["stoch"][:, 0]
        return batch

    # ----- checkpoints -----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        path = Path(path)
        leaves = jax.tree.leaves(self.state)
        np.savez(path / "agent.npz", *[np.asarray(x) for x in leaves], key=np.asarray(self.key))
        rng = {"explore_rng": self.explore.rng.bit_generator.state} if self.explore else {}
        (path / "agent.json").write_text(json.dumps({**self.counters, **rng}))
        self.replay.save(path)

    def load(self, path: Path) -> None:
        path = Path(path)
        expected, treedef = jax.tree.flatten(self.state)
        with np.load(path / "agent.npz") as f:
            stored = [f[f"arr_{i}"] for i in range(len(f.files) - 1)]  # all but "key"
            self.key = jnp.asarray(f["key"])
        if [x.shape for x in stored] != [x.shape for x in expected]:
            raise ValueError(f"{path} holds {len(stored)} arrays that do not match this agent's {len(expected)} "
                             "parameter and optimiser arrays: it was written by another config or code version")
        # Replicated on this run's train devices, however many wrote the checkpoint (save keeps one copy).
        self.state = jax.device_put(jax.tree.unflatten(treedef, stored), self.learner.place.replicated)
        self._policy_params = None
        self.counters = json.loads((path / "agent.json").read_text())
        if self.explore:
            self.explore.rng.bit_generator.state = self.counters.pop("explore_rng")
        self.replay.load(path)
