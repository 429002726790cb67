"""`python -m harness.bench`: the project's speed figures, measured on this machine.

Prints a table and writes JSON (figures + the machine's description) to `--out`. Each part of the
project contributes figures through a `figures(quick: bool) -> list[dict]` function (keys: name,
value, unit, notes); this module lists them in FIGURE_SOURCES. Where two things are compared, both
are measured in the same run and the ratio is reported.

`--against official,sheeprl` (any subset) instead times our DreamerV3 against the peers' own training
code, side by side in one run (harness/peers.py), and prints the ratio table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import psutil

FIGURE_SOURCES = {
    "loop": "harness.bench",
    "suites": "suites.bench",
    "dreamer": "agents.dreamer.bench",
    "ppo": "agents.ppo.bench",
    "report": "results.bench",
    "replay": "agents.dreamer.replay_bench",
}


def raw_env_steps_per_second(task: str, steps: int) -> float:
    """Random actions straight into one gymnasium env, resetting at episode ends."""
    env = gym.make(task)
    env.reset(seed=0)
    env.action_space.seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def loop_steps_per_second(task: str, steps: int, root: Path) -> float:
    """The same task through the whole loop: random agent, scores and metrics files, no evaluation."""
    from harness import loop
    from harness.plan import compose, make_plan
    from harness.rundir import RunDir
    from harness.run import prepare

    cfg = compose([f"task={task}", f"steps={steps}", f"root={root}", "suite.protocol.eval_every=0",
                   "suite.protocol.final_eval_episodes=0", "run.log_every=1e9", "run.checkpoint_every=1e9"])
    (spec,) = make_plan(cfg)
    prepare(spec, "new")
    run = RunDir(spec.run_dir)
    loop.train(run, threading.Event())
    last = json.loads(run.metrics.read_text().splitlines()[-1])
    return last["fps/env"]  # measured by the loop from its first to its last step


def figures(quick: bool) -> list[dict[str, Any]]:
    steps = 20_000 if quick else 200_000
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for task in ("CartPole-v1", "Pendulum-v1"):
            raw = raw_env_steps_per_second(task, steps)
            through_loop = loop_steps_per_second(task, steps, Path(root))
            overhead_us = (1 / through_loop - 1 / raw) * 1e6
            rows += [
                {"name": f"classic/{task} raw gymnasium env", "value": raw, "unit": "agent steps/s",
                 "notes": "one env, random actions"},
                {"name": f"classic/{task} through the loop", "value": through_loop, "unit": "agent steps/s",
                 "notes": f"random agent, one env in-process; {through_loop / raw:.2f}x the raw env"},
                {"name": f"classic/{task} loop overhead", "value": overhead_us, "unit": "us/step",
                 "notes": "(1/loop - 1/raw): flags, episode accounting, agent calls, logs"},
            ]
    return rows


def machine() -> dict[str, Any]:
    from harness.logs import cpu_name, versions

    return {"cpu": cpu_name(), "cores": len(os.sched_getaffinity(0)), "memory_gb": psutil.virtual_memory().total / 2**30,
            "platform": platform.platform(), "python": platform.python_version(), "versions": versions(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def against_peers(args: argparse.Namespace) -> int:
    """`--against`: the side-by-side comparison with the peers; JSON with every timing to `--out`."""
    from dataclasses import asdict

    from harness import peers

    try:
        against, points = peers.parse_against(args.against), peers.parse_points(args.points)
        dtype = args.dtype or ("float32" if jax_platform() == "cpu" else "default")
        results, table = peers.compare(against, points, args.rounds, args.per_round, args.policy_per_round,
                                       args.warmup, install=not args.no_install, dtype=dtype)
    except peers.PeerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table)
    out = args.out or Path("bench_results") / "peers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "dtype": dtype, "sides": ["ours", *against],
                               "results": {p: {s: asdict(r) for s, r in by_side.items()}
                                           for p, by_side in results.items()}, "table": table}, indent=1))
    print(f"wrote {out}")
    return 0


def jax_platform() -> str:
    import jax

    return jax.default_backend()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(FIGURE_SOURCES), help="figure groups to measure")
    parser.add_argument("--quick", action="store_true", help="short measurements (a smoke test, noisy)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (default bench_results/bench.json, with --against peers.json)")
    peer = parser.add_argument_group("side by side with the peers (harness/peers.py)")
    peer.add_argument("--against", help="comma-separated peers to compare with: official, sheeprl")
    peer.add_argument("--points", default="dmc_1m,dmc_12m,crafter_1m,crafter_12m",
                      help="comma-separated points (default: all four)")
    peer.add_argument("--rounds", type=int, default=5, help="turns each side gets (default 5)")
    peer.add_argument("--per-round", type=int, default=2, help="timed updates per turn (default 2)")
    peer.add_argument("--policy-per-round", type=int, default=50, help="timed policy steps per turn (default 50)")
    peer.add_argument("--warmup", type=int, default=2, help="untimed updates after compilation (default 2)")
    peer.add_argument("--no-install", action="store_true", help="use the peers' venvs as they are; never pip")
    peer.add_argument("--dtype", choices=["float32", "default"],
                      help="float32 (CPU default), or each side's default dtype (GPU default: bfloat16 where it is)")
    args = parser.parse_args(argv)
    for name in ("rounds", "per_round", "policy_per_round"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    if args.against:
        return against_peers(args)
    args.out = args.out or Path("bench_results") / "bench.json"
    rows, failures = [], {}
    for group in args.only or list(FIGURE_SOURCES):
        module_name = FIGURE_SOURCES[group]
        try:
            module = sys.modules[__name__] if module_name == __name__ else importlib.import_module(module_name)
            for row in module.figures(args.quick):
                rows.append({"group": group, **row})
                print(f"{group:8s} {row['name']:55s} {row['value']:>12.4g} {row['unit']:16s} {row.get('notes', '')}",
                      flush=True)
        except Exception as error:  # one group's missing extra must not hide the others' figures
            failures[group] = f"{type(error).__name__}: {error}"
            print(f"{group:8s} FAILED: {failures[group]}", flush=True)
            traceback.print_exc()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "quick": args.quick, "figures": rows,
                                    "failures": failures}, indent=1))
    print(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
