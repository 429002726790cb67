"""What a run records while it runs: scores and metrics lines, TensorBoard, and meta.json's cost."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from harness.rundir import FORMAT, RunDir, now, write_atomic

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("dreamerbench", "numpy", "gymnasium", "hydra-core", "jax", "jaxlib", "optax", "torch", "ale-py",
            "dm-control", "mujoco", "crafter", "minerl", "submitit")
STATUS_EVERY = 2.0  # seconds between status.json updates (the launcher's progress display reads it)


def wandb_run(run: RunDir, config: dict[str, Any]) -> Any:
    """The run's W&B run: project, group and tags from its suite, agent, variant, task and seed.

    The W&B id is kept in <run_dir>/wandb.json, so a resumed or requeued run continues the same W&B
    run. Its points have the run's frames as x axis ('step'): W&B's own step counter keeps growing
    when a resumed run logs again from its last checkpoint."""
    import wandb

    file, folder = run.path / "wandb.json", run.path / ".wandb"  # hidden: harness.status lists no W&B files
    folder.mkdir(exist_ok=True)
    known = json.loads(file.read_text()) if file.exists() else {}
    suite, agent, variant = config["suite"]["name"], config["agent"]["name"], (config.get("variant") or {}).get("name")
    group = "/".join([suite, agent] + ([variant] if variant else []))
    logger = config["logger"]
    wb = wandb.init(project=logger.get("wandb_project") or "dreamerbench", entity=logger.get("wandb_entity"),
                    id=known.get("id"), resume="allow", dir=str(folder),
                    group=group, name=f"{group}/{config['task']}/seed{config['seed']}", config=config,
                    tags=[t[:64] for t in [suite, agent, *([variant] if variant else []), config["task"],
                                           f"seed{config['seed']}"]])
    if not known:
        write_atomic(file, json.dumps({"id": wb.id, "project": wb.project, "group": group}, indent=1))
    wb.define_metric("*", step_metric="step")
    return wb


class Writer:
    """Appends scores.jsonl and metrics.jsonl lines; mirrors scalars to TensorBoard and W&B if asked."""

    def __init__(self, run: RunDir, tensorboard: bool, wandb_config: dict[str, Any] | None = None):
        self.files = {"scores": open(run.scores, "a"), "metrics": open(run.metrics, "a")}
        self.board = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.board = SummaryWriter(str(run.path / "tensorboard"))
        self.wandb = wandb_run(run, wandb_config) if wandb_config else None

    def scores(self, records: list[dict[str, Any]]) -> None:
        self._write("scores", records)
        for r in records if self.board else []:
            self.board.add_scalar(f"episode/{r['mode']}_score", r["episode/score"], r["step"])
        for r in records if self.wandb else []:
            self.wandb.log({"step": r["step"], f"episode/{r['mode']}_score": r["episode/score"]})

    def metrics(self, record: dict[str, Any]) -> None:
        self._write("metrics", [record])
        for key, value in record.items() if self.board else []:
            if key not in ("step", "agent_step"):
                self.board.add_scalar(key, value, record["step"])
        if self.wandb:
            self.wandb.log(record)

    def _write(self, name: str, records: list[dict[str, Any]]) -> None:
        file = self.files[name]
        file.writelines(json.dumps(r) + "\n" for r in records)
        file.flush()

    def sync(self) -> None:
        for file in self.files.values():
            file.flush()
            os.fsync(file.fileno())
        if self.board:
            self.board.flush()

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        if self.board:
            self.board.close()
        if self.wandb:
            self.wandb.finish()


class Meter:
    """Averages the agent's update metrics and measures steps/s between metrics lines."""

    def __init__(self, agent_step: int):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.scores: list[float] = []
        self.last_score: float | None = None
        self.steps_per_second: float | None = None
        self.start_step, self.start_time = agent_step, time.monotonic()
        self.status_time = 0.0

    def add_metrics(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1

    def add_scores(self, scores: list[float]) -> None:
        self.scores += scores
        self.last_score = scores[-1]

    def due(self, every: float) -> bool:
        return time.monotonic() - self.start_time >= every

    def status_due(self) -> bool:
        if time.monotonic() - self.status_time < STATUS_EVERY:
            return False
        self.status_time = time.monotonic()
        return True

    def flush(self, agent_step: int, action_repeat: int) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.start_time, 1e-9)
        self.steps_per_second = (agent_step - self.start_step) / elapsed
        record: dict[str, Any] = {"step": agent_step * action_repeat, "agent_step": agent_step}
        record.update({f"train/{k}" if "/" not in k else k: self.sums[k] / self.counts[k] for k in self.sums})
        if self.scores:
            record["episode/score_mean"] = float(np.mean(self.scores))
        record["fps/env"] = self.steps_per_second
        self.sums, self.counts, self.scores = {}, {}, []
        self.start_step, self.start_time = agent_step, time.monotonic()
        return record


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def git_state() -> tuple[str | None, str | None, bool]:
    """The code's commit, its commit date (ISO 8601: results.provenance compares it with the fixes' dates
    where the reader has no git history) and whether tracked files differ from it; (None, None, False)
    outside a git checkout."""
    try:
        commit, date = subprocess.run(["git", "-C", str(REPO), "show", "-s", "--format=%H %cI", "HEAD"],
                                      capture_output=True, text=True, check=True).stdout.split()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
        return commit, date, dirty
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None, None, False


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def describe_device(agent_device: str) -> str:
    if agent_device.startswith("gpu"):
        return agent_device
    return f"cpu: {cpu_name()} x{len(os.sched_getaffinity(0))}"


def slurm_job_id() -> str | None:
    if "SLURM_ARRAY_JOB_ID" in os.environ:
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID")


def process_cpu_seconds() -> float:
    """CPU seconds of this process, its finished children and its live children (env workers)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:4])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


class Session:
    """One process's stint on a run: adds its wall-clock and CPU/GPU seconds to meta.json."""

    def __init__(self, run: RunDir, agent: Any, start_step: int):
        self.run = run
        self.meta = run.read_meta()
        commit, commit_date, dirty = git_state()
        device = describe_device(getattr(agent, "device", "cpu"))
        self.meta.update(format=FORMAT, host=socket.gethostname(), git_commit=commit, git_commit_date=commit_date,
                         git_dirty=dirty, versions=versions(), device=device)
        self.meta.setdefault("command", os.environ.get("DREAMERBENCH_COMMAND", " ".join(sys.argv)))
        self.meta.setdefault("started_at", now())
        self.meta.setdefault("slurm_job_ids", [])
        job = slurm_job_id()
        if job and job not in self.meta["slurm_job_ids"]:
            self.meta["slurm_job_ids"].append(job)
        self.totals = self.meta.get("compute", {"wall_seconds": 0.0, "cpu_seconds": 0.0, "gpu_seconds": 0.0})
        # "gpu: <name>" is one GPU, "gpu: <name> x<N>" N of them (a Dreamer train step on several)
        self.gpus = (int(device.rsplit(" x", 1)[1]) if " x" in device else 1) if device.startswith("gpu") else 0
        self.meta.setdefault("sessions", []).append(
            {"started_at": now(), "ended_at": None, "host": self.meta["host"], "slurm_job_id": job,
             "command": os.environ.get("DREAMERBENCH_COMMAND", " ".join(sys.argv)),
             # each session's code: a run resumed after a fix still holds steps made before it
             "git_commit": commit, "git_commit_date": commit_date,
             "start_step": start_step, "end_step": start_step})
        self.start_wall, self.start_cpu = time.monotonic(), process_cpu_seconds()
        self.update(start_step)

    def update(self, step: int, ended: bool = False) -> None:
        wall = time.monotonic() - self.start_wall
        self.meta["compute"] = {
            "wall_seconds": self.totals["wall_seconds"] + wall,
            "cpu_seconds": self.totals["cpu_seconds"] + process_cpu_seconds() - self.start_cpu,
            "gpu_seconds": self.totals["gpu_seconds"] + wall * self.gpus,
        }
        self.meta["sessions"][-1].update(end_step=step, ended_at=now() if ended else None)
        self.meta["updated_at"] = now()
        self.run.write_meta(self.meta)

    def close(self, step: int) -> None:
        self.update(step, ended=True)
