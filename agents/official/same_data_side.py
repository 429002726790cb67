"""The official side of `agents.official.same_data`; runs in .venv-official (with the repository on PYTHONPATH).

    python -m agents.official.same_data_side shapes SETTINGS.json OUT.json   # parameter names and shapes
    python -m agents.official.same_data_side train DIR SIDE [--exact-twohot]

`train` builds the official agent from DIR/settings.json (the settings `agent=dreamerv3_official` gives
the server), loads the initial parameters DIR/init.npz (official names), and makes one update per row of
DIR/windows.npz on those windows of the recorded replay, drawing its own random numbers. It writes its
posterior latents back into its copy of the replay as the official train loop does (its agent hands out
an update's outputs with the next update), and each update's metrics as a line of DIR/SIDE.jsonl.

`--exact-twohot` replaces `TwoHot.pred` by the same sum written as sum_{b > 0} b (p(b) - p(-b)): compiled
by the official stack's jax, the official symmetric sum keeps one rounded product of each mirrored pair
(tests/official/test_twohot_rounding.py), and a difference of equal probabilities is exactly 0.
"""

from __future__ import annotations

import json
import pathlib
import sys

import elements
import embodied.jax.outs as outs
import jax
import numpy as np
from embodied.jax import internal

from agents.official import server


def exact_twohot() -> None:
    def pred(self):
        n = self.logits.shape[-1]
        assert n % 2 == 1, "symmetric bins with a centre bin at 0"
        m = (n - 1) // 2
        diff = self.probs[..., m + 1:] - self.probs[..., :m][..., ::-1]
        return self.unsquash((diff * self.bins[..., m + 1:]).sum(-1))

    outs.TwoHot.pred = pred


def build(settings: dict, logdir: str):
    config = server.official_config(settings["configs"], {**settings["flags"], "logdir": logdir})
    return config, server.make_agent(config, server.spaces(settings["obs"]), server.spaces(settings["act"]))


def shapes(inp: str, out: str) -> None:
    settings = json.loads(pathlib.Path(inp).read_text())
    _, agent = build(settings, str(pathlib.Path(out).parent / "logdir"))
    pathlib.Path(out).write_text(json.dumps({k: list(v.shape) for k, v in agent.params.items()}))


def train(folder: pathlib.Path, side: str) -> None:
    settings = json.loads((folder / "settings.json").read_text())
    config, agent = build(settings, str(folder / "logdir"))
    for name, value in np.load(folder / "init.npz").items():
        old = agent.params[name]
        agent.params[name] = jax.device_put(value.astype(old.dtype), old.sharding)
    agent.policy_params = internal.move({k: agent.params[k].copy() for k in agent.policy_keys},
                                        agent.policy_params_sharding)  # as Agent.load does
    with np.load(settings["replay"]) as stored:
        data = {k: stored[k] for k in stored.files}
    stoch, classes = settings["stoch"]
    data["stoch"] = data["stoch"].reshape(*data["stoch"].shape[:2], stoch, classes)
    if settings["discrete"]:  # ours are one-hot vectors, the official ones indices
        data["action"] = data["action"].argmax(-1).astype(np.int32)
    windows = np.load(folder / "windows.npz")
    envs, starts = windows["envs"], windows["starts"]
    B, length = envs.shape[1], config.batch_length + 1
    keys = [*settings["obs"], "action"]
    previous = None
    with open(folder / f"{side}.jsonl", "w") as log:
        for update, (env, start) in enumerate(zip(envs, starts)):
            rows, steps = env[:, None], start[:, None] + np.arange(length)
            batch = {k: data[k][rows, steps] for k in keys}
            batch.update({"dyn/deter": data["deter"][rows, steps], "dyn/stoch": data["stoch"][rows, steps],
                          "consec": np.zeros((B, length), np.int32), "stepid": np.zeros((B, length, 20), np.uint8)})
            batch = internal.device_put(batch, agent.train_sharded)
            seed = agent._seeds(update, agent.train_mirrored)  # as the official batch stream adds it
            _, result, metrics = agent.train(agent.init_train(B), {**batch, "seed": seed})
            if previous is not None:  # the outputs and metrics of the previous update
                done_rows, done_steps = previous
                for name in ("deter", "stoch"):
                    data[name][done_rows, done_steps[:, 1:]] = np.asarray(result["replay"][f"dyn/{name}"])
                scalars = {k: float(np.mean(v)) for k, v in metrics.items() if np.size(v) == 1}
                log.write(json.dumps({"update": update, **scalars}) + "\n")
            previous = (rows, steps)
    elements.print(f"{side}: {len(envs) - 1} updates logged", color="green")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "shapes":
        shapes(*args)
    else:
        folder, side, *flags = args
        if "--exact-twohot" in flags:
            exact_twohot()
        train(pathlib.Path(folder), side)
