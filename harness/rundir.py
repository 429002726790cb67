"""The run directory: one run's files, written so that a kill at any moment loses nothing.

Layout and format (version 1) are documented in README.md ("Run directories"):
  config.yaml, meta.json, status.json, metrics.jsonl, scores.jsonl, worker.log,
  checkpoint/latest + checkpoint/<agent_step:012d>/ (loop.json + the agent's files).
JSON files are replaced atomically (temp file, fsync, rename). The two logs are append-only; a
checkpoint records their lengths, and resuming truncates them back to those lengths, so episodes
finished after the last checkpoint are neither lost twice nor recorded twice.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import yaml

FORMAT = 1
STATES = ("pending", "running", "done", "failed", "preempted")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old or the new file, never a torn one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class RunDir:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.meta = self.path / "meta.json"
        self.status = self.path / "status.json"
        self.metrics = self.path / "metrics.jsonl"
        self.scores = self.path / "scores.jsonl"
        self.log = self.path / "worker.log"
        self.checkpoints = self.path / "checkpoint"

    # --- config, status, meta -----------------------------------------------------------------
    def exists(self) -> bool:
        return self.config.exists()

    def read_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config.read_text())

    def write_config(self, config: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config, yaml.safe_dump(config, sort_keys=False))

    def read_status(self) -> dict[str, Any]:
        return read_json(self.status) or {"state": "pending"}

    def update_status(self, **fields: Any) -> dict[str, Any]:
        status = self.read_status() | fields | {"updated_at": now()}
        if status["state"] not in STATES:
            raise ValueError(f"unknown run state {status['state']!r}; valid: {', '.join(STATES)}")
        write_atomic(self.status, json.dumps(status, indent=1))
        return status

    def read_meta(self) -> dict[str, Any]:
        return read_json(self.meta) or {}

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_atomic(self.meta, json.dumps(meta, indent=1))

    def clear(self) -> None:
        """Delete everything of this run (force=true)."""
        shutil.rmtree(self.path, ignore_errors=True)

    # --- append-only logs ---------------------------------------------------------------------
    def log_sizes(self) -> dict[str, int]:
        return {p.name: (p.stat().st_size if p.exists() else 0) for p in (self.metrics, self.scores)}

    def truncate_logs(self, sizes: dict[str, int]) -> None:
        for p in (self.metrics, self.scores):
            if p.exists() and p.stat().st_size > sizes.get(p.name, 0):
                with open(p, "r+") as f:
                    f.truncate(sizes.get(p.name, 0))

    # --- checkpoints --------------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        try:
            name = (self.checkpoints / "latest").read_text().strip()
        except FileNotFoundError:
            return None
        path = self.checkpoints / name
        return path if (path / "loop.json").exists() else None

    def save_checkpoint(self, agent_step: int, loop_state: dict[str, Any], save_agent: Callable[[Path], None]) -> Path:
        """Write a complete checkpoint next to the old one, then switch `latest` to it atomically."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        name = f"{agent_step:012d}"
        tmp = self.checkpoints / f".{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_agent(tmp)
        (tmp / "loop.json").write_text(json.dumps(loop_state))
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb") as f:
                    os.fsync(f.fileno())
        final = self.checkpoints / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        fsync_dir(self.checkpoints)
        write_atomic(self.checkpoints / "latest", name + "\n")
        for old in self.checkpoints.iterdir():  # keep only the latest complete checkpoint
            if old.is_dir() and old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def load_loop_state(self, checkpoint: Path) -> dict[str, Any]:
        return json.loads((checkpoint / "loop.json").read_text())
