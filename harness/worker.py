"""One job: run or resume the run in a directory. The local and SLURM launchers both call this.

`python -m harness.worker <run_dir>` exits 0 when the run is done, 3 when it was stopped by a signal
(checkpoint written, rerun to resume), 1 when it failed (the error is in status.json) and 4 when
another live process holds the run directory's lock (nothing was touched; the holder is printed).

Stopping: a stop signal (STOP_SIGNALS), or the death of the launcher that started this worker, sets
the loop's stop event; the loop checkpoints and returns at its next step. A watcher thread notices
both at once, even while the main thread is stuck in a long call (a JIT compile, a train step),
and marks status.json `stopping_since` so that `harness.status` shows the run as stopping.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Mapping

from harness import loop
from harness.logs import slurm_job_id
from harness.rundir import RunDir, RunLocked, now

EXIT_CODES = {"done": 0, "failed": 1, "preempted": 3, "running elsewhere": 4}
MAX_ERROR_CHARS = 300
# The launcher that starts a worker names itself here; the worker stops when that process is gone.
PARENT_ENV = "DREAMERBENCH_LAUNCHER_PID"
PARENT_CHECK_S = 1.0
# glibc's malloc in every worker, read only at process start (so the launchers set it): one arena, no
# mmaps, no trimming. A JAX train step on the CPU allocates its temporaries afresh at every call (0.36 GB
# at DMC 1m, 2.2 GB at Crafter 1m); by default each is a fresh mmap, unmapped when freed, so every update
# faulted in and zeroed all of them again (1.3 of the 5.2 CPU-seconds of a Crafter 1m update, in the
# kernel). From one untrimmed heap an update reuses the pages of the one before.
ALLOCATOR_TUNABLES = ("glibc.malloc.arena_max=1", "glibc.malloc.mmap_max=0",
                      "glibc.malloc.trim_threshold=4611686018427387904")  # 2**62: never


def worker_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with ALLOCATOR_TUNABLES added to GLIBC_TUNABLES (a user's own tunables of other names stay)."""
    ours = {t.split("=")[0] for t in ALLOCATOR_TUNABLES}
    kept = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t and t.split("=")[0] not in ours]
    return {**env, "GLIBC_TUNABLES": ":".join([*kept, *ALLOCATOR_TUNABLES])}


class StopWatcher:
    """Turns stop signals and the launcher's death into `stop.set()` plus a 'stopping' mark in status.

    Python runs signal handlers only between bytecodes of the main thread, which can be minutes
    away during a compile. The C-level handler also writes the signal number to a wakeup fd, which
    this thread reads at once. It also polls the parent pid every PARENT_CHECK_S seconds: a
    SIGKILLed launcher sends nothing, and polling works on every OS and for a process re-parented
    before it could ask for a parent-death signal (prctl PR_SET_PDEATHSIG is Linux-only and racy).
    """

    def __init__(self, run: RunDir, stop: threading.Event, parent_pid: int | None):
        self.run, self.stop, self.parent_pid = run, stop, parent_pid
        self.read_end, self.write_end = socket.socketpair()
        self.write_end.setblocking(False)
        self.closed = False

    def __enter__(self) -> StopWatcher:
        self.previous_handlers = {sig: signal.signal(sig, lambda *_: self.stop.set()) for sig in loop.STOP_SIGNALS}
        self.previous_fd = signal.set_wakeup_fd(self.write_end.fileno(), warn_on_full_buffer=False)
        self.thread = threading.Thread(target=self._watch, name="stop-watcher", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self.previous_fd)
        for sig, handler in self.previous_handlers.items():
            signal.signal(sig, handler)
        self.closed = True
        self.write_end.send(b"\0")  # wake the thread so that it ends
        self.thread.join()
        self.read_end.close()
        self.write_end.close()

    def _watch(self) -> None:
        stop_numbers = {int(sig) for sig in loop.STOP_SIGNALS}
        while not self.closed:
            readable, _, _ = select.select([self.read_end], [], [], PARENT_CHECK_S)
            received = self.read_end.recv(64) if readable else b""
            if self.closed:
                return
            if stop_numbers & set(received):
                self._request_stop(f"signal {signal.Signals(next(iter(stop_numbers & set(received)))).name}")
            elif self.parent_pid is not None and os.getppid() != self.parent_pid:
                self._request_stop(f"its launcher (pid {self.parent_pid}) is gone")
                self.parent_pid = None

    def _request_stop(self, reason: str) -> None:
        first = not self.stop.is_set()
        self.stop.set()
        if first:
            print(f"=== stopping: {reason}; checkpoint at the next loop step", file=sys.stderr, flush=True)
            self.run.update_status(stopping_since=now(), stop_reason=reason)


def run_job(run_dir: Path | str, lock_wait_s: float = 0.0, parent_pid: int | None = None) -> str:
    """Run the job in `run_dir`; returns 'done', 'preempted', 'failed' or 'running elsewhere'. Never raises.

    `lock_wait_s`: how long to wait for another holder of the run's lock to let go (a requeued SLURM
    task whose previous instance is still writing its checkpoint). `parent_pid`: stop when the
    process with this pid is no longer this process's parent.
    """
    run = RunDir(run_dir)
    try:
        run.lock.acquire(lock_wait_s, slurm_job_id())
    except RunLocked as error:
        print(f"=== not started: {error}", file=sys.stderr, flush=True)
        return "running elsewhere"
    try:
        if run.read_status().get("state") == "done":  # finished by the holder this one waited for
            print("=== the run was finished by the holder of its lock", file=sys.stderr, flush=True)
            return "done"
        run.update_status(stopping_since=None, stop_reason=None)
        stop = threading.Event()
        with StopWatcher(run, stop, parent_pid):
            try:
                state = loop.train(run, stop)
                run.update_status(state=state, error=None)
                return state
            except Exception as error:  # the run fails; its last good checkpoint stays
                trace = traceback.format_exc()
                print(trace, file=sys.stderr, flush=True)
                summary = " ".join(f"{type(error).__name__}: {error}".split())[:MAX_ERROR_CHARS]  # the log has it all
                run.update_status(state="failed", error=summary, traceback=trace, log=str(run.log))
                return "failed"
    finally:
        run.lock.release()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m harness.worker <run_dir>")
    parent = os.environ.get(PARENT_ENV)
    sys.exit(EXIT_CODES[run_job(sys.argv[1], parent_pid=int(parent) if parent else None)])


if __name__ == "__main__":
    main()
