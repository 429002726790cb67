"""Replay figures for `python -m harness.bench --only replay`: what a checkpoint costs as the replay grows,
and what the disk store costs in RAM and sampling time.

Steps have the shapes of a DreamerV3 size-12m DMC vision run (64x64x3 frame, deter 2048, stoch 32x16,
6 actions, one env stream): 22.6 KB each. The replay is filled with constant steps (content does not matter:
nothing is compressed), checkpointed through the run directory as the loop does, one chunk of new steps
added, and checkpointed again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.dreamer.replay import Replay
from harness.rundir import RunDir

CHUNK, WINDOW, BATCH = 1024, 65, 16


def dmc_vision_step() -> dict[str, np.ndarray]:
    return {"image": np.full((1, 64, 64, 3), 7, np.uint8), "action": np.zeros((1, 6), np.float32),
            "reward": np.zeros(1, np.float32), "is_first": np.zeros(1, bool), "is_last": np.zeros(1, bool),
            "is_terminal": np.zeros(1, bool), "deter": np.zeros((1, 2048), np.float32),
            "stoch": np.zeros((1, 32, 16), np.float32)}


def fill(replay: Replay, steps: int) -> None:
    step = dmc_vision_step()
    for _ in range(steps):
        replay.add(step)


def checkpoint_costs(steps: int, root: Path) -> dict[str, float]:
    """Seconds and bytes of the first checkpoint (the whole replay) and of the next one, a chunk later."""
    run = RunDir(root)
    replay = Replay(10**8, 1, WINDOW, online=False, seed=0, chunk=CHUNK, directory=root / "replay")
    fill(replay, steps)

    def save(directory: Path) -> None:
        (directory / "agent").mkdir()
        replay.save(directory / "agent")

    costs = {}
    for name in ("first", "second"):
        before = {f.stat().st_ino for f in run.checkpoints.rglob("*") if f.is_file()}
        start = time.perf_counter()
        checkpoint = run.save_checkpoint(len(costs), {}, save)
        costs[f"{name}_s"] = time.perf_counter() - start
        costs[f"{name}_bytes"] = sum(f.stat().st_size for f in checkpoint.rglob("*")
                                     if f.is_file() and f.stat().st_ino not in before)
        fill(replay, CHUNK)
    return costs


MEMORY_PROBE = """
import json, sys, time
from pathlib import Path
from agents.dreamer.replay import Replay
from agents.dreamer.replay_bench import fill, BATCH, CHUNK, WINDOW

def anon() -> int:  # the process's own memory: mapped file pages, which the kernel may drop, are not in it
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["RssAnon"].split()[0]) * 1024

store, steps, directory = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
replay = Replay(10**8, 1, WINDOW, online=False, seed=0, chunk=CHUNK, store=store, directory=directory)
peak = anon()
for _ in range(steps // CHUNK):
    fill(replay, CHUNK)
    peak = max(peak, anon())
replay.sample(BATCH)
start = time.perf_counter()
for _ in range(50):
    replay.sample(BATCH)
sample_ms = (time.perf_counter() - start) / 50 * 1e3
print(json.dumps({"peak_anon": max(peak, anon()), "sample_ms": sample_ms}))
"""


def memory_costs(store: str, steps: int, root: Path) -> dict[str, float]:
    """Peak anonymous RSS of a process filling a replay of `steps` steps, and its sampling time."""
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, store, str(steps), str(root / store)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def figures(quick: bool) -> list[dict[str, Any]]:
    base = 2 * CHUNK if quick else 8 * CHUNK
    step_bytes = sum(v.nbytes for v in dmc_vision_step().values())
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        costs = {}
        for scale in (1, 4, 16):
            costs[scale] = checkpoint_costs(scale * base, Path(tmp) / f"x{scale}")
            gb = scale * base * step_bytes / 1e9
            rows += [
                {"name": f"checkpoint, whole replay ({scale}x, {gb:.2f} GB)", "value": costs[scale]["first_s"],
                 "unit": "s", "notes": f"{costs[scale]['first_bytes'] / 1e9:.2f} GB written"},
                {"name": f"checkpoint, one chunk later ({scale}x)", "value": costs[scale]["second_s"], "unit": "s",
                 "notes": f"{costs[scale]['second_bytes'] / 1e6:.1f} MB written"},
            ]
        rows.append({"name": "next checkpoint bytes, 16x replay / 1x", "unit": "ratio",
                     "value": costs[16]["second_bytes"] / costs[1]["second_bytes"],
                     "notes": f"seconds: {costs[16]['second_s'] / costs[1]['second_s']:.2f}x"})
        steps = 16 * base
        held = {store: memory_costs(store, steps, Path(tmp)) for store in ("memory", "disk")}
        for store, m in held.items():
            rows += [
                {"name": f"{store} store: peak RSS, {steps * step_bytes / 1e9:.2f} GB replay",
                 "value": m["peak_anon"] / 1e9, "unit": "GB",
                 "notes": "anonymous (the page cache of mapped chunks is the kernel's to drop)"},
                {"name": f"{store} store: sample {BATCH} windows of {WINDOW}", "value": m["sample_ms"], "unit": "ms",
                 "notes": "page cache warm"},
            ]
    return rows
