"""`agent=dreamerv3_official`: the official DreamerV3 agent behind our Agent protocol (agents/base.py).

The official code needs its own virtual environment (numpy<2, jax 0.4.33), so this class runs in the
worker and drives `server.py` in a `.venv-official` python over two pipes (wire.py): plain numpy and
Python values cross, the official agent, replay and policy states stay on the server. The settings
are ours, translated to official flags (`official_settings`): size, train ratio, batch, replay,
compute dtype and seed as in `agent=dreamerv3`; anything else the official config holds can be set
with `agent.flags` (a dict of dotted official keys), e.g. `+agent.flags.agent.opt.lr=3e-4`.

The server exits when its pipe closes or its parent pid changes, so it dies with the worker, also
when the worker is SIGKILLed. When it dies first, the worker fails with its last output.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import LOOP_KEYS
from agents.official import wire
from agents.official.configs import CONFIGS, DEFAULTS
from agents.official.setup import REPO_ROOT, OfficialSetupError, official_python

TAIL_LINES = 40
FLAGS = ("reward", "is_first", "is_last", "is_terminal")
SETTINGS = ("size", "train_ratio", "batch_size", "batch_length", "compute_dtype", "replay", "flags")
DTYPES = ("auto", "float32", "bfloat16")


class OfficialServerError(RuntimeError):
    """The official server failed a request or died; the message holds its traceback or last output."""


def validate(config: dict[str, Any]) -> None:
    """Raise ValueError with a clear message if the config cannot build the official agent."""
    missing = [k for k in SETTINGS if k not in config]
    if missing:
        raise ValueError(f"dreamerv3_official config lacks keys: {', '.join(missing)}")
    if f"size{config['size']}" not in CONFIGS:
        sizes = [k.removeprefix("size") for k in CONFIGS if k.startswith("size")]
        raise ValueError(f"unknown agent.size '{config['size']}'; valid sizes: {', '.join(sizes)}")
    if config["compute_dtype"] not in DTYPES:
        raise ValueError(f"unknown agent.compute_dtype '{config['compute_dtype']}'; valid: {', '.join(DTYPES)}")
    for key in ("train_ratio", "batch_size", "batch_length"):
        if not float(config[key]) > 0:
            raise ValueError(f"agent.{key} must be positive, got {config[key]}")
    for key in flat_flags(config["flags"] or {}):
        node = DEFAULTS
        for part in key.split("."):  # the official config refuses unknown keys; say so before the run
            if not isinstance(node, dict) or part not in node:
                valid = ", ".join(node) if isinstance(node, dict) else "none (a value)"
                raise ValueError(f"unknown official config key '{key}' in agent.flags; valid keys there: {valid}")
            node = node[part]
    try:
        official_python()
    except OfficialSetupError as error:
        raise ValueError(str(error)) from None


def flat_flags(flags: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Official flags as dotted keys: `{agent.opt.lr: x}` and `{agent: {opt: {lr: x}}}` alike."""
    out: dict[str, Any] = {}
    for key, value in flags.items():
        name = f"{prefix}{key}"
        out.update(flat_flags(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def _space(space: gym.Space) -> list:
    """An observation or action space as the official `elements.Space` arguments."""
    if isinstance(space, gym.spaces.Discrete):
        return ["int32", [], 0, int(space.n)]
    if isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3:
        return ["uint8", list(space.shape), 0, 255]
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return ["float32", list(space.shape)]
    raise ValueError(f"the official agent takes Discrete actions, uint8 HxWxC images and float vectors, not {space}")


def official_settings(config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space,
                      num_envs: int, seed: int) -> dict[str, Any]:
    """The server's `init` arguments: official config blocks and flags for our settings, and the spaces."""
    if isinstance(act_space, gym.spaces.Box) and not (np.all(act_space.low == -1) and np.all(act_space.high == 1)):
        raise ValueError(f"the official agent acts in [-1, 1]; this env's action space is {act_space}")
    dtype = "float32" if config["compute_dtype"] == "auto" else config["compute_dtype"]  # the venv's jax is CPU-only
    flags = {
        "seed": seed, "batch_size": int(config["batch_size"]), "batch_length": int(config["batch_length"]),
        "run.train_ratio": float(config["train_ratio"]), "run.envs": num_envs,
        "replay.size": float(config["replay"]["capacity"]), "replay.online": bool(config["replay"]["online"]),
        "jax.compute_dtype": dtype, **flat_flags(config["flags"] or {}),
    }
    obs = {k: _space(s) for k, s in obs_space.spaces.items()}
    obs.update({k: ["float32", []] if k == "reward" else ["bool", []] for k in FLAGS})
    return {"configs": ["cpu", f"size{config['size']}"], "flags": flags, "obs": obs,
            "act": {"action": _space(act_space)}, "num_envs": num_envs}


class _Server:
    """The server process and its pipes; `call` sends one request and returns its result."""

    def __init__(self, python: Path) -> None:
        self.scratch = tempfile.mkdtemp(prefix="dreamerv3-official-")  # the official logdir: an empty replay folder
        request_read, self._request_write = os.pipe()
        self._reply_read, reply_write = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [str(python), "-u", "-m", "agents.official.server", str(request_read), str(reply_write), self.scratch],
            pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
        os.close(request_read)  # only the server holds its ends: our exit is its EOF
        os.close(reply_write)
        self.requests = os.fdopen(self._request_write, "wb")
        self.replies = os.fdopen(self._reply_read, "rb")
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.reader = threading.Thread(target=self._forward_output, daemon=True)
        self.reader.start()
        self._finalizer = weakref.finalize(self, _shut_down, self.process, self.scratch, self.requests, self.replies)

    def _forward_output(self) -> None:
        """The server's output goes to the run log; the last lines are kept for error messages."""
        for line in iter(self.process.stdout.readline, b""):
            text = line.decode(errors="replace")
            self.tail.append(text)
            sys.stderr.write(text)

    def call(self, command: str, **kwargs: Any) -> Any:
        try:
            wire.send(self.requests, (command, kwargs))
            status, result = wire.receive(self.replies)
        except (EOFError, BrokenPipeError) as error:
            code = self.process.wait(timeout=30)
            self.reader.join(timeout=5)
            raise OfficialServerError(
                f"the official DreamerV3 server (pid {self.process.pid}) exited with code {code} during "
                f"'{command}'; its last output:\n{''.join(self.tail)}") from error
        if status == "error":
            raise OfficialServerError(f"the official DreamerV3 agent failed in '{command}':\n{result}")
        return result

    def close(self) -> None:
        self._finalizer()


def _shut_down(process: subprocess.Popen, scratch: str, *pipes: Any) -> None:
    for pipe in pipes:
        pipe.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(scratch, ignore_errors=True)


class OfficialDreamerAgent:
    def __init__(
        self, config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space, num_envs: int, seed: int,
        workdir: Path | None = None,
    ):
        validate(config)
        self.discrete = isinstance(act_space, gym.spaces.Discrete)
        self.obs_keys = list(obs_space.spaces)
        self.obs_dtypes = {k: s.dtype for k, s in obs_space.spaces.items()}
        settings = official_settings(config, obs_space, act_space, num_envs, seed)
        self.server = _Server(official_python())
        self.server.call("init", **settings)
        self._pending: dict[str, np.ndarray] | None = None  # the observed step, sent with the update

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        validate(config)

    def _obs(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {k: np.asarray(obs[k], self.obs_dtypes[k]) for k in self.obs_keys}
        out.update({k: np.asarray(obs[k], np.float32 if k == "reward" else bool) for k in LOOP_KEYS})
        return out

    def act(self, obs: dict[str, np.ndarray], state: Any, mode: str) -> tuple[np.ndarray, Any]:
        # the state is a handle: the official policy carry stays on the server, one per mode
        action, handle = self.server.call("act", obs=self._obs(obs), mode=mode, handle=state)
        if self.discrete:
            return action.astype(np.int64), handle
        return np.clip(action, -1.0, 1.0).astype(np.float32), handle

    def observe(self, step: dict[str, np.ndarray]) -> None:
        self._pending = self._obs(step)  # the server stores its policy's action with it

    def update(self) -> dict[str, float]:
        if self._pending is None:
            return {}
        transition, self._pending = self._pending, None
        return self.server.call("step", transition=transition)

    def save(self, path: Path) -> None:
        if self._pending is not None:  # the loop updates after every observe; this is a safeguard
            self.update()
        self.server.call("save", path=str(Path(path).resolve()))

    def load(self, path: Path) -> None:
        self.server.call("load", path=str(Path(path).resolve()))
