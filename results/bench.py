"""Speed figure of the results pipeline, for `python -m harness.bench`: a full Atari100k report.

The report covers every published Atari100k method (12 methods, 5 to 100 runs per game, 26 games),
plus 130 run directories of this project's format (26 games x 5 seeds, made from DreamerV3's published
training curves) compared against the published DreamerV3 runs: tables, verdicts and all plots, with
50,000 bootstrap replicates (5,000 with --quick), from the shipped published score files.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from results.analysis import Options
from results.reference import PUBLISHED
from results.report import build



def write_runs(root: Path, published: Path) -> None:
    """DreamerV3's published Atari100k runs as run directories of an agent 'dreamerv3' (format 1)."""
    protocol = {"budget": 100000, "action_repeat": 4, "final_score":
                {"rule": "train_window", "start": 390000, "end": 400000}, "normaliser": "atari_human"}
    for run in json.load(gzip.open(published / "dreamerv3_2024/atari100k-dreamerv3.json.gz")):
        task = run["task"].removeprefix("atari_")
        folder = root / "atari26" / "dreamerv3" / task / f"seed{run['seed']}"
        folder.mkdir(parents=True)
        config = {"format": 1, "suite": {"name": "atari26", "protocol": protocol}, "agent": {"name": "dreamerv3"},
                  "task": task, "seed": run["seed"], "protocol_overrides": {}}
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        (folder / "status.json").write_text(json.dumps({"state": "done", "step": 400000}))
        (folder / "meta.json").write_text(json.dumps({"device": "gpu: NVIDIA H100", "compute": {
            "wall_seconds": 7200.0, "cpu_seconds": 7000.0, "gpu_seconds": 7200.0}}))
        lines = [json.dumps({"step": x, "episode/score": y, "mode": "train", "final": False})
                 for x, y in zip(run["xs"], run["ys"])]
        (folder / "scores.jsonl").write_text("\n".join(lines) + "\n")


def figures(quick: bool) -> list[dict[str, Any]]:
    reps = 5_000 if quick else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        write_runs(runs, PUBLISHED)
        options = Options(reps=reps, compare_published=True)
        wall, cpu = time.perf_counter(), time.process_time()
        build([str(runs)], Path(tmp) / "report", "atari26", None, None, options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    notes = (f"python -m results.report <130 run dirs> --suite atari26 --compare published: 12 published methods "
             f"+ ours, 26 games, {reps:,} bootstrap replicates, tables and plots; CPU {cpu:.1f} s, "
             f"load average {os.getloadavg()[0]:.1f} at the end")
    return [{"name": "results/report_atari100k_seconds", "value": round(wall, 1), "unit": "s", "notes": notes}]
