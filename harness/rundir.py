"""The run directory: one run's files, written so that a kill at any moment loses nothing.

Layout and format (version 1) are documented in docs/reference/run-directory.md:
  config.yaml, meta.json, status.json, metrics.jsonl, scores.jsonl, worker.log,
  .lock, checkpoint/latest + checkpoint/<agent_step:012d>/ (loop.json, manifest.json + the agent's files),
  and what the agent keeps while it runs (its `workdir`: Dreamer's replay/ chunks).
JSON files are replaced atomically (temp file, fsync, rename). The two logs are append-only; a
checkpoint records their lengths, and resuming truncates them back to those lengths, so episodes
finished after the last checkpoint are neither lost twice nor recorded twice.

One writer: a worker holds `RunLock` (fcntl.flock on `.lock`) for its whole life; the kernel (or
the NFS server) releases it when the process dies, however it dies, so a dead holder never blocks.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import yaml

FORMAT = 1
STATES = ("pending", "running", "done", "failed", "preempted")
KEEP_CHECKPOINTS = 2  # the newest and the one before, in case the newest turns out damaged
_STATUS_UPDATE = threading.Lock()


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
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
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


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class RunLocked(RuntimeError):
    """Another live process holds the run directory's lock; `holder` says who (host, pid, ...)."""

    def __init__(self, path: Path, holder: dict[str, Any]):
        super().__init__(f"{path} is in use by {describe_holder(holder)}")
        self.holder = holder


def describe_holder(holder: dict[str, Any]) -> str:
    job = f", SLURM job {holder['slurm_job_id']}" if holder.get("slurm_job_id") else ""
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}{job} "
            f"(since {holder.get('started_at', '?')})")


class RunLock:
    """The exclusive lock on a run directory: fcntl.flock on `<run_dir>/.lock`, with its holder inside.

    flock, not a pid file: the lock dies with its process (SIGKILL, OOM kill, a lost NFS client once
    the server's lease expires), so a stale lock needs no guessing. On a shared filesystem this
    relies on flock working across hosts (local disks, NFSv4, Lustre mounted with `flock`, GPFS,
    BeeGFS); where the filesystem refuses locks, acquiring raises an error rather than run unlocked.
    The JSON inside (host, pid, start time, SLURM job id) is for humans and is trusted only while
    the flock is held.
    """

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def acquire(self, wait_s: float = 0.0, slurm_job_id: str | None = None) -> None:
        """Take the lock, waiting up to `wait_s` seconds for a holder to let go; raises RunLocked."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RunLocked(self.path.parent, self.read_holder()) from None
                time.sleep(0.5)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise OSError(error.errno, f"{self.path}: this filesystem refuses file locks ({error.strerror}); "
                                               "runs need flock to guarantee one writer per run directory "
                                               "(mount with locking, e.g. Lustre -o flock, or use another root=)")
                raise
        self.fd = fd
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": now(),
                  "slurm_job_id": slurm_job_id, "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def read_holder(self) -> dict[str, Any]:
        return read_json(self.path) or {}

    def holder_if_held(self) -> dict[str, Any] | None:
        """The holder while some process holds the lock, None when it is free (or was never taken)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.read_holder()
        except OSError:  # no locks on this filesystem: nobody can hold one
            return None
        finally:
            os.close(fd)
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
        self.lock = RunLock(self.path)

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
        if fields.get("state", "pending") not in STATES:
            raise ValueError(f"unknown run state {fields['state']!r}; valid: {', '.join(STATES)}")
        with _STATUS_UPDATE:  # the worker's stop watcher thread updates it too
            status = self.read_status() | fields | {"updated_at": now()}
            write_atomic(self.status, json.dumps(status, indent=1))
        return status

    def read_meta(self) -> dict[str, Any]:
        return read_json(self.meta) or {}

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_atomic(self.meta, json.dumps(meta, indent=1))

    def clear(self) -> None:
        """Delete everything of this run but the lock file, which the caller holds (force=true)."""
        for path in self.path.iterdir():
            if path != self.lock.path:
                shutil.rmtree(path) if path.is_dir() else path.unlink()

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
        return self.find_checkpoint()[0]

    def find_checkpoint(self) -> tuple[Path | None, list[str]]:
        """The newest checkpoint that passes `verify_checkpoint`, and what was wrong with newer ones."""
        latest = self.latest_checkpoint_name()
        names = sorted((p.name for p in self.checkpoints.glob("[0-9]*") if p.is_dir()), reverse=True)
        if latest in names:  # normally the newest anyway; `latest` wins if the clock of names disagrees
            names.remove(latest)
            names.insert(0, latest)
        problems = []
        for name in names:
            problem = verify_checkpoint(self.checkpoints / name)
            if problem is None:
                return self.checkpoints / name, problems
            problems.append(f"checkpoint {name} is damaged ({problem})")
        return None, problems

    def save_checkpoint(self, agent_step: int, loop_state: dict[str, Any], save_agent: Callable[[Path], None]) -> Path:
        """Write a complete checkpoint with its manifest, switch `latest` to it, keep the previous one."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        name = f"{agent_step:012d}"
        tmp = self.checkpoints / f".{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_agent(tmp)
        (tmp / "loop.json").write_text(json.dumps(loop_state))
        manifest = {}
        for file, carried in self._carried_over(tmp).items():
            if carried is None:  # written by this checkpoint: made durable and hashed now
                with open(file, "rb") as f:
                    os.fsync(f.fileno())
                manifest[str(file.relative_to(tmp))] = {"size": file.stat().st_size, "sha256": file_digest(file)}
            else:
                manifest[str(file.relative_to(tmp))] = {**carried, "linked": True}
        write_atomic(tmp / MANIFEST, json.dumps({"files": manifest}, indent=1))
        final = self.checkpoints / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        fsync_dir(self.checkpoints)
        write_atomic(self.checkpoints / "latest", name + "\n")
        kept = sorted((p for p in self.checkpoints.glob("[0-9]*") if p.is_dir()), reverse=True)
        kept = [final] + [p for p in kept if p != final][:KEEP_CHECKPOINTS - 1]
        for old in self.checkpoints.iterdir():  # older checkpoints, and temp dirs of killed writers
            if old.is_dir() and old not in kept:  # (safe: this process holds the run's lock)
                shutil.rmtree(old, ignore_errors=True)
        return final

    def _carried_over(self, tmp: Path) -> dict[Path, dict[str, Any] | None]:
        """Each file of a checkpoint being written, with its manifest entry in the newest checkpoint where it is
        the same file (a hard link an agent made to a file written once: Dreamer's replay chunks), else None.
        Such a file was hashed when first written and is never written again, so it costs nothing now."""
        previous = self.latest_checkpoint_name()
        entries = (read_json(self.checkpoints / previous / MANIFEST) or {}).get("files", {}) if previous else {}
        carried = {}
        for file in sorted(f for f in tmp.rglob("*") if f.is_file()):
            name, old = str(file.relative_to(tmp)), None
            if name in entries and (self.checkpoints / previous / name).exists():
                if os.path.samefile(self.checkpoints / previous / name, file):
                    old = {k: v for k, v in entries[name].items() if k != "linked"}
            carried[file] = old
        return carried

    def latest_checkpoint_name(self) -> str | None:
        try:
            return (self.checkpoints / "latest").read_text().strip() or None
        except FileNotFoundError:
            return None

    def load_loop_state(self, checkpoint: Path) -> dict[str, Any]:
        return json.loads((checkpoint / "loop.json").read_text())


MANIFEST = "manifest.json"


def verify_checkpoint(checkpoint: Path) -> str | None:
    """What is wrong with a checkpoint (a file missing, of another size or checksum), or None if sound.

A file carried over from an earlier checkpoint by hard link (`linked` in the manifest) is checked by size:
it was hashed when written, and checking it again would read the whole replay at every resume.

    Checkpoints written before manifests existed have none; they count as sound if loop.json parses.
    """
    if read_json(checkpoint / "loop.json") is None:
        return "loop.json missing or unreadable"
    if not (checkpoint / MANIFEST).exists():
        return None
    manifest = read_json(checkpoint / MANIFEST)
    if manifest is None:
        return f"{MANIFEST} unreadable"
    for name, expected in manifest["files"].items():
        file = checkpoint / name
        if not file.is_file():
            return f"{name} missing"
        if file.stat().st_size != expected["size"]:
            return f"{name} has {file.stat().st_size} bytes, {expected['size']} written"
        if not expected.get("linked") and file_digest(file) != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None
