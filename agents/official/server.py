"""The official DreamerV3 agent and replay, served to `agent.py` over two pipes; runs in .venv-official.

    .venv-official/bin/python -m agents.official.server REQUEST_FD REPLY_FD SCRATCH_DIR

`agent.py` starts this process; it is not a user command. Each request is (command, kwargs) and each
reply ('ok', result) or ('error', traceback) (wire.py). Commands: `init` (build the agent from the
settings agent.py derives from our config), `act`, `step` (add a transition and train as the official
`embodied.run.train` does), `save`, `load`.

What runs is the official code, driven the way its own train script drives it: `dreamerv3.main`'s
`make_replay` and `make_stream`, `embodied.jax.Agent`'s policy/train/save/load, its train-ratio
scheduler (`elements.when.Ratio`, fed every env transition) and its replay-context write-back.
Not run: its envs, logger, report pass and checkpoint files (our loop owns those).

The process lives as long as its parent: EOF on the request pipe or a changed parent pid ends it
(the worker may be SIGKILLed mid-compile); stop signals are left to the worker, which checkpoints.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import shutil
import signal
import sys
import threading
import time
import traceback
from typing import Any, BinaryIO

import elements
import numpy as np
import ruamel.yaml as yaml

import dreamerv3
from dreamerv3 import main as official_main
from dreamerv3.agent import Agent

from agents.official import wire

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2, signal.SIGINT)
PARENT_CHECK_S = 1.0


def official_config(configs: list[str], flags: dict[str, Any]) -> elements.Config:
    """The official config: `defaults`, then the named blocks of configs.yaml, then the flags."""
    blocks = yaml.YAML(typ="safe").load((pathlib.Path(dreamerv3.__file__).parent / "configs.yaml").read_text())
    config = elements.Config(blocks["defaults"])
    for name in configs:
        config = config.update(blocks[name])
    return config.update(flags)


def spaces(described: dict[str, list]) -> dict[str, elements.Space]:
    return {k: elements.Space(np.dtype(d), tuple(s), *bounds) for k, (d, s, *bounds) in described.items()}


def make_agent(config: elements.Config, obs_space: dict, act_space: dict) -> Agent:
    """As dreamerv3.main.make_agent, with the profiler off and compiling on first use."""
    return Agent(obs_space, act_space, elements.Config(
        **config.agent, logdir=config.logdir, seed=config.seed,
        jax=dict(config.jax, precompile=False, profiler=False), batch_size=config.batch_size,
        batch_length=config.batch_length, replay_context=config.replay_context,
        report_length=config.report_length, replica=0, replicas=1))


class Server:
    def __init__(self, configs: list[str], flags: dict[str, Any], obs: dict, act: dict, num_envs: int,
                 scratch: str) -> None:
        config = official_config(configs, {**flags, "logdir": scratch})  # holds only an empty replay folder
        self.config, self.num_envs = config, num_envs
        self.obs_space, self.act_space = spaces(obs), spaces(act)
        self.agent = make_agent(config, self.obs_space, self.act_space)
        self.replay = official_main.make_replay(config, "replay")
        self.should_train = elements.when.Ratio(config.run.train_ratio / (config.batch_size * config.batch_length))
        self.steps = 0  # env transitions seen, reset steps included (the official `step` counter)
        self.stream = None  # the train stream starts with the first update, when replay can fill it
        self.carry_train = None
        self.carries: dict[str, tuple[int, Any]] = {}  # policy state per mode, behind a handle
        self.handles = 0
        self.policy_outs: dict[str, np.ndarray] | None = None  # the last train action and its latents

    def act(self, obs: dict[str, np.ndarray], mode: str, handle: int | None) -> tuple[np.ndarray, int]:
        if handle is None:
            carry = self.agent.init_policy(self.num_envs)
        elif self.carries.get(mode, (None,))[0] == handle:
            carry = self.carries[mode][1]
        else:
            raise ValueError(f"policy state {handle} is not the latest of mode {mode!r}")
        carry, acts, outs = self.agent.policy(carry, {k: obs[k] for k in self.obs_space}, mode=mode)
        self.handles += 1
        self.carries[mode] = (self.handles, carry)
        if mode == "train":
            self.policy_outs = {**acts, **outs}
        return acts["action"], self.handles

    def step(self, transition: dict[str, np.ndarray]) -> dict[str, float]:
        """Add one step of every env and train what the ratio owes, env by env as the official driver."""
        if self.policy_outs is None:
            raise RuntimeError("step needs the outputs of a preceding act in mode 'train'")
        # as the driver: the policy's own action (the env got it clipped), zeroed at an episode's last step
        trans = {**self.policy_outs, **{k: transition[k] for k in self.obs_space}}
        action, keep = trans["action"], ~transition["is_last"]
        trans["action"] = action * keep.reshape(-1, *[1] * (action.ndim - 1)).astype(action.dtype)
        self.policy_outs = None
        metrics: list[dict[str, Any]] = []
        for env in range(self.num_envs):
            self.steps += 1
            self.replay.add({k: v[env] for k, v in trans.items()}, env)
            metrics += self._train()
        return self._summary(metrics) if metrics else {}

    def _train(self) -> list[dict[str, Any]]:
        """`trainfn` of embodied.run.train."""
        config = self.config
        if len(self.replay) < config.batch_size * config.batch_length:
            return []
        if self.stream is None:
            self.stream = iter(self.agent.stream(official_main.make_stream(config, self.replay, "train")))
            self.carry_train = self.agent.init_train(config.batch_size)
        metrics = []
        for _ in range(self.should_train(self.steps)):
            self.carry_train, outs, mets = self.agent.train(self.carry_train, next(self.stream))
            if "replay" in outs:
                self.replay.update(outs["replay"])
            metrics.append(mets)
        return metrics

    def _summary(self, metrics: list[dict[str, Any]]) -> dict[str, float]:
        """The mean of each scalar train metric (the agent returns the previous update's), and counters."""
        keys = {k for m in metrics for k, v in m.items()
                if np.ndim(v) == 0 and np.issubdtype(np.asarray(v).dtype, np.number)}
        out = {f"train/{k}": float(np.mean([m[k] for m in metrics if k in m])) for k in sorted(keys)}
        out["train/updates"] = float(int(self.agent.n_updates))
        out["replay/items"] = float(len(self.replay))
        return out

    def save(self, path: str) -> None:
        folder = pathlib.Path(path)
        with open(folder / "agent.pkl", "wb") as f:
            pickle.dump(self.agent.save(), f)
        # The official replay writes the chunks it has not yet written to its one directory; each of
        # our checkpoints is a new directory that must hold them all.
        self.replay.directory = elements.Path(folder / "replay")
        self.replay.directory.mkdir()
        self.replay.saved, self.replay.save_wait = set(), True
        for chunk in list(self.replay.chunks.values()):
            chunk.saved = False
        self.replay.save()
        counters = {"steps": self.steps, "ratio_prev": self.should_train._prev}
        (folder / "server.pkl").write_bytes(pickle.dumps(counters))

    def load(self, path: str) -> None:
        folder = pathlib.Path(path)
        with open(folder / "agent.pkl", "rb") as f:
            self.agent.load(pickle.load(f))
        self.replay.load(directory=elements.Path(folder / "replay"))
        counters = pickle.loads((folder / "server.pkl").read_bytes())
        self.steps, self.should_train._prev = counters["steps"], counters["ratio_prev"]


def _exit_with_parent(parent: int, scratch: str) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:
            shutil.rmtree(scratch, ignore_errors=True)
            os._exit(1)


def serve(requests: BinaryIO, replies: BinaryIO, scratch: str) -> None:
    """Answer requests until the pipe closes."""
    server = None
    while True:
        try:
            command, kwargs = wire.receive(requests)
        except EOFError:
            return
        try:
            if command == "init":
                server = Server(**kwargs, scratch=scratch)
                result = None
            else:
                result = getattr(server, command)(**kwargs)
            wire.send(replies, ("ok", result))
        except Exception:
            wire.send(replies, ("error", traceback.format_exc()))


def main() -> None:
    for sig in STOP_SIGNALS:  # the worker decides when to stop, and needs this process to checkpoint
        signal.signal(sig, signal.SIG_IGN)
    scratch = sys.argv[3]
    threading.Thread(target=_exit_with_parent, args=(os.getppid(), scratch), daemon=True).start()
    with os.fdopen(int(sys.argv[1]), "rb") as requests, os.fdopen(int(sys.argv[2]), "wb") as replies:
        serve(requests, replies, scratch)
    shutil.rmtree(scratch, ignore_errors=True)  # also when the parent was killed (it removes it otherwise)
    sys.stdout.flush()
    os._exit(0)  # the official prefetch thread may still wait for a batch


if __name__ == "__main__":
    main()
