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

import functools
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
        self.replay.save_wait = True  # a checkpoint is complete when `save` returns
        # Where the replay's written chunks are: chunk uuid -> an open descriptor of the folder holding its
        # file (the last checkpoint saved or loaded). A descriptor, not a path: the harness writes each
        # checkpoint in a temporary folder and renames it afterwards.
        self.chunk_folders: dict[Any, int] = {}
        self.open_folders: set[int] = set()
        self.copy_warned = False

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
        # The official replay writes each chunk once, into its one directory: `save()` completes the open
        # chunks and writes those not in its `saved` set (later updates of their latents stay in memory).
        # Each of our checkpoints is a new directory: the chunks written before and still in the replay
        # are hard-linked into it from the checkpoint that holds them, and `save()` writes the new ones.
        replay = folder / "replay"
        replay.mkdir()
        self._carry_written_chunks(replay)
        self.replay.directory = elements.Path(replay)
        self.replay.save()
        counters = {"steps": self.steps, "ratio_prev": self.should_train._prev}
        (folder / "server.pkl").write_bytes(pickle.dumps(counters))
        self._remember(replay, self._written_chunks())

    def load(self, path: str) -> None:
        folder = pathlib.Path(path)
        with open(folder / "agent.pkl", "rb") as f:
            self.agent.load(pickle.load(f))
        before = set(self.replay.chunks)
        self.replay.load(directory=elements.Path(folder / "replay"))
        counters = pickle.loads((folder / "server.pkl").read_bytes())
        self.steps, self.should_train._prev = counters["steps"], counters["ratio_prev"]
        self._remember(folder / "replay", self._written_chunks() - before)

    def _written_chunks(self) -> set:
        """The uuids of the chunks the replay holds and has written (or loaded)."""
        return {c.uuid for c in list(self.replay.chunks.values()) if c.length and c.uuid in self.replay.saved}

    def _carry_written_chunks(self, target: pathlib.Path) -> None:
        """Hard-link the file of every written chunk still in the replay into `target` (a copy where the
        filesystem refuses hard links). A chunk whose file is gone (its checkpoint deleted, a save that
        failed) is marked unwritten, so that `save()` writes it again from memory."""
        written = self._written_chunks()
        for chunk in list(self.replay.chunks.values()):
            if chunk.uuid not in written:
                continue
            folder = self.chunk_folders.get(chunk.uuid)
            if folder is None or not self._link(folder, chunk.filename, target):
                self.replay.saved.discard(chunk.uuid)
                chunk.saved = False

    def _link(self, folder: int, name: str, target: pathlib.Path) -> bool:
        """`name` of the folder open as `folder` into `target`: a hard link, else a copy; False if it is gone."""
        try:
            os.link(name, target / name, src_dir_fd=folder)
            return True
        except FileNotFoundError:
            return False
        except OSError as error:
            refused = error
        try:
            with open(name, "rb", opener=functools.partial(os.open, dir_fd=folder)) as source, \
                    open(target / name, "xb") as copy:
                shutil.copyfileobj(source, copy)
        except FileNotFoundError:
            return False
        if not self.copy_warned:
            self.copy_warned = True
            print(f"warning: no hard link into {target} ({refused}); checkpoints copy the replay chunks "
                  "written before, and cost the whole replay each", file=sys.stderr, flush=True)
        return True

    def _remember(self, replay: pathlib.Path, uuids: set) -> None:
        """The files of these chunks are in `replay`; folders that no chunk in the replay needs are closed."""
        fd = os.open(replay, os.O_RDONLY | os.O_DIRECTORY)
        self.chunk_folders = {u: f for u, f in self.chunk_folders.items() if u in self.replay.chunks}
        self.chunk_folders.update(dict.fromkeys(uuids, fd))
        for unused in {fd, *self.open_folders} - set(self.chunk_folders.values()):
            os.close(unused)
        self.open_folders = set(self.chunk_folders.values())


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
