"""`python -m agents.official.same_data RUN [--updates N] [--seed S] [--block K] [--out DIR]`: our DreamerV3 and
the official code learning from the same data.

The learning study (results.fidelity) gives each agent its own replay, so its two sides learn from
different data; the ten-step check (tests/official/test_equivalence.py) fixes every random draw. This
sits between them. From the same initial weights (ours, mapped onto the official names), each side makes
N updates on the same windows of a recorded replay, the final replay of an `agent=dreamerv3` run RUN,
with its own random draws. Each writes its posterior latents back into its own copy of that replay one
update late, as both real train loops do. Three sides run at once: ours, the official code, and the
official code with its twohot mean computed without its float32 rounding (same_data_side.py,
docs/official_mapping.md Findings). The training metrics both log (results.fidelity.DIAGNOSTICS),
averaged over blocks of K updates, are printed side by side and written to DIR/same_data.md; each
side's per-update metrics are in DIR/<side>.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import jax
import numpy as np

from agents.dreamer.agent import DreamerAgent
from agents.dreamer.replay import Replay
from agents.official import mapping, setup
from agents.official.agent import official_settings
from harness.loop import make_vector_env
from harness.rundir import RunDir
from results.fidelity import DIAGNOSTICS
from suites.base import Suite

SIDES = {"ours": None, "official": [], "official_exact_twohot": ["--exact-twohot"]}


def recorded_replay(run: Path) -> tuple[dict, Path]:
    """The run's config and the agent folder (replay included) of its newest checkpoint."""
    rundir = RunDir(run)
    if not rundir.config.exists():
        raise SystemExit(f"{run} is not a run directory (no {rundir.config.name})")
    config = rundir.read_config()
    if config["agent"]["name"] != "dreamerv3":
        raise SystemExit(f"{run} is a run of agent={config['agent']['name']}; this needs a replay of agent=dreamerv3")
    checkpoint, _ = rundir.find_checkpoint()
    if checkpoint is None:
        raise SystemExit(f"{run} has no checkpoint to read a replay from")
    return config, checkpoint / "agent"


def in_time_order(replay: Replay, out: Path) -> dict[str, np.ndarray]:
    """The replay's streams with the oldest step first (a full replay wraps around), also saved as
    out/replay.npz for the official sides."""
    data = replay.stored()
    np.savez(out / "replay.npz", **data)
    return data


def prepare(run: Path, out: Path, updates: int, seed: int, python: Path) -> tuple[DreamerAgent, dict]:
    """Our agent and the replay in time order; the official side's files in `out`: settings, initial
    weights, windows."""
    config, recorded = recorded_replay(run)
    out.mkdir(parents=True, exist_ok=True)
    suite = Suite.from_config(config["suite"])
    env = make_vector_env(suite, config["task"], "train", [seed], parallel=False)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    env.close()
    num_envs = config["agent"]["envs"]
    agent = DreamerAgent(config["agent"], obs_space, act_space, num_envs, seed)
    agent.replay.load(recorded)
    data = in_time_order(agent.replay, out)
    streams, steps = data["reward"].shape
    length = agent.length + 1
    if steps < length:
        raise SystemExit(f"{run}'s replay holds {steps} steps per env, fewer than one window of {length}")
    settings = official_settings({**config["agent"], "flags": {}}, obs_space, act_space, num_envs, seed)
    classes = agent.cfg["rssm"]["classes"]
    stoch = [agent.learner.rssm.latent.flat_dim // classes, classes]
    settings.update(replay=str(out / "replay.npz"), stoch=stoch, discrete=agent.discrete)
    (out / "settings.json").write_text(json.dumps(settings))
    subprocess.run([str(python), "-m", "agents.official.same_data_side", "shapes", str(out / "settings.json"),
                    str(out / "shapes.json")], check=True, env=_official_env(), cwd=setup.REPO_ROOT)
    shapes = json.loads((out / "shapes.json").read_text())
    np.savez(out / "init.npz", **mapping.to_official(agent.state["params"], agent.state["slow_val"], shapes))
    rng = np.random.default_rng(seed)
    np.savez(out / "windows.npz", envs=rng.integers(0, streams, (updates, agent.batch)),
             starts=rng.integers(0, steps - length + 1, (updates, agent.batch)))
    return agent, data


def _official_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(setup.REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


def train_ours(agent: DreamerAgent, data: dict[str, np.ndarray], out: Path) -> None:
    """Our side of `same_data_side.train`: the same windows, our update, our latents written back."""
    windows = np.load(out / "windows.npz")
    state, previous = agent.state, None
    with open(out / "ours.jsonl", "w") as log:
        for update, (env, start) in enumerate(zip(windows["envs"], windows["starts"])):
            rows, steps = env[:, None], start[:, None] + np.arange(agent.length + 1)
            batch = agent.train_batch({k: v[rows, steps] for k, v in data.items()})
            state, metrics, latents = agent.learner.train_step(state, jax.device_put(batch), agent._next_key())
            if previous is not None:  # as both train loops: the next batch is drawn before the latents are written
                (done_rows, done_steps), written = previous
                for name, value in written.items():
                    data[name][done_rows, done_steps[:, 1:]] = np.asarray(value)
            previous = (rows, steps), latents
            log.write(json.dumps({"update": update + 1, **{k: float(v) for k, v in metrics.items()}}) + "\n")


def table(out: Path, block: int) -> str:
    """Each diagnostic, per side, averaged over blocks of `block` updates (the official side logs N - 1)."""
    logs = {side: [json.loads(line) for line in (out / f"{side}.jsonl").read_text().splitlines()] for side in SIDES}
    last = min(len(rows) for rows in logs.values())
    edges = list(range(0, last, block)) + [last]
    spans = list(zip(edges[:-1], edges[1:]))
    lines = ["| metric | side | " + " | ".join(f"{lo + 1}-{hi}" for lo, hi in spans) + " |",
             "|---|---|" + "---|" * len(spans)]
    for label, (ours_key, official_key) in DIAGNOSTICS.items():
        for side, rows in logs.items():
            key = (ours_key if side == "ours" else official_key).removeprefix("train/")
            values = np.array([row.get(key, np.nan) for row in rows[:last]], np.float64)
            if np.isnan(values).all():
                continue
            means = [np.nanmean(values[lo:hi]) for lo, hi in spans]
            lines.append(f"| {label} | {side} | " + " | ".join(f"{m:.4g}" for m in means) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory of agent=dreamerv3 with a checkpoint")
    parser.add_argument("--updates", type=int, default=900)
    parser.add_argument("--seed", type=int, default=0, help="initial weights, windows and both sides' draws")
    parser.add_argument("--block", type=int, default=100, help="updates per column of the table")
    parser.add_argument("--out", type=Path, default=None, help="default: RUN/same_data")
    args = parser.parse_args(argv)
    out = args.out or args.run / "same_data"
    python = setup.setup()
    agent, data = prepare(args.run, out, args.updates, args.seed, python)
    command = [str(python), "-m", "agents.official.same_data_side", "train", str(out)]
    officials = [subprocess.Popen([*command, side, *flags], env=_official_env(), cwd=setup.REPO_ROOT)
                 for side, flags in SIDES.items() if flags is not None]
    train_ours(agent, data, out)
    for process in officials:
        if process.wait():
            raise SystemExit(f"the official side failed: {process.args}")
    text = table(out, args.block)
    (out / "same_data.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
