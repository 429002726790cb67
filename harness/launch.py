"""The local launcher: the plan's jobs as worker processes on this machine, `workers` at a time.

Each job is `python -m harness.worker <run_dir>` with its output in `<run_dir>/worker.log`, started in
its own session so a terminal's Ctrl-C reaches only the launcher. SIGINT, SIGTERM and SIGHUP (Ctrl-C,
`kill`, `timeout`, a container stop, a closed SSH session) all make the launcher ask every running
job to checkpoint and stop (SIGTERM) and wait for it. If the launcher is SIGKILLed, its workers notice
within a second or two (harness.worker.StopWatcher) and checkpoint and stop by themselves: nothing
runs on after the command is gone. A failed job does not stop the others.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from harness.plan import RunSpec
from harness.rundir import RunDir, describe_holder
from harness.worker import EXIT_CODES, PARENT_ENV, worker_environment

STATE_OF_EXIT = {code: state for state, code in EXIT_CODES.items()}
LOG_PROGRESS_EVERY = 30.0  # seconds between progress lines when stdout is not a terminal
STOP_LAUNCHER = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM and SIGHUP take the Ctrl-C path


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def format_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


class Progress:
    """One line of progress over all jobs: done/running/failed, steps, steps/s and ETA."""

    def __init__(self, specs: list[RunSpec]):
        self.specs = specs
        self.tty = sys.stdout.isatty()
        self.last_line = ""
        self.last_print = -LOG_PROGRESS_EVERY

    def line(self, running: list[RunSpec], states: dict[RunSpec, str]) -> str:
        frames = budget = rate = remaining = 0.0
        for spec in self.specs:
            status = RunDir(spec.run_dir).read_status()
            agent_step = spec.budget if states.get(spec) == "done" else status.get("agent_step", 0)
            frames += agent_step * spec.budget_frames / spec.budget
            budget += spec.budget_frames
            remaining += spec.budget - agent_step if states.get(spec) != "failed" else 0
            if spec in running:
                rate += status.get("steps_per_second") or 0.0
        done = sum(s == "done" for s in states.values())
        failed = sum(s == "failed" for s in states.values())
        eta = remaining / rate if rate > 0 else None
        return (f"jobs {done}/{len(self.specs)} done, {len(running)} running, {failed} failed | "
                f"frames {format_count(frames)}/{format_count(budget)} | {format_count(rate)} steps/s | "
                f"ETA {format_duration(eta)}")

    def show(self, line: str) -> None:
        if self.tty:
            print("\r" + line.ljust(len(self.last_line)), end="", flush=True)
            self.last_line = line
        elif time.monotonic() - self.last_print >= LOG_PROGRESS_EVERY:  # a log file, not a terminal
            print(line, flush=True)
            self.last_print = time.monotonic()

    def message(self, text: str) -> None:
        print(("\r" + " " * len(self.last_line) + "\r" if self.tty else "") + text, flush=True)


class LocalLauncher:
    def __init__(self, config: dict[str, Any], root_config: dict[str, Any]):
        self.workers = root_config["workers"]
        self.every = config["progress_every"]

    def start(self, spec: RunSpec) -> subprocess.Popen:
        log = open(RunDir(spec.run_dir).log, "a")
        return subprocess.Popen([sys.executable, "-m", "harness.worker", str(spec.run_dir)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True,
                                env=worker_environment({**os.environ, PARENT_ENV: str(os.getpid())}))

    def launch(self, specs: list[RunSpec]) -> int:
        pending, running, states = list(specs), {}, {}
        progress = Progress(specs)
        print(f"{len(specs)} jobs, {self.workers} at a time; logs in <run_dir>/worker.log")
        interrupted = False
        previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_LAUNCHER}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    spec = pending.pop(0)
                    running[spec] = (self.start(spec), time.monotonic())
                for spec, (process, started) in list(running.items()):
                    if process.poll() is not None:
                        del running[spec]
                        states[spec] = self.report(spec, process.returncode, time.monotonic() - started, progress)
                progress.show(progress.line(list(running), states))
                time.sleep(min(self.every, 0.5) if running else 0)
        except KeyboardInterrupt:
            interrupted = True
            for sig in STOP_LAUNCHER:  # a second signal must not cut the wait short (SIGKILL still does)
                signal.signal(sig, signal.SIG_IGN)
            progress.message(f"interrupted: asking {len(running)} running jobs to checkpoint and stop ...")
            for process, _ in running.values():
                process.send_signal(signal.SIGTERM)
            for spec, (process, started) in running.items():
                process.wait()
                states[spec] = self.report(spec, process.returncode, time.monotonic() - started, progress)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if progress.tty:
            print()
        failed = [s for s, state in states.items() if state == "failed"]
        elsewhere = sum(s == "running elsewhere" for s in states.values())
        print(f"{sum(s == 'done' for s in states.values())} done, {len(failed)} failed, "
              f"{len(specs) - len(states)} not started, {sum(s == 'preempted' for s in states.values())} stopped"
              + (f", {elsewhere} running elsewhere" if elsewhere else "")
              + (" (rerun the same command to resume)" if interrupted else ""))
        if interrupted:
            return 130
        if failed:
            return 1
        return 0 if all(s == "done" for s in states.values()) else EXIT_CODES["preempted"]

    @staticmethod
    def report(spec: RunSpec, code: int, seconds: float, progress: Progress) -> str:
        state = STATE_OF_EXIT.get(code, "failed")
        name = spec.name
        if state == "running elsewhere":  # another worker holds the run: its files are not ours to touch
            holder = RunDir(spec.run_dir).lock.holder_if_held()
            progress.message(f"running elsewhere {name}: " + (f"in use by {describe_holder(holder)}" if holder
                                                               else f"was in use (see {RunDir(spec.run_dir).log})"))
        elif state == "failed":
            status = RunDir(spec.run_dir).read_status()
            error = status.get("error") or f"worker exited with code {code}"
            if status.get("state") != "failed":  # killed before it could say why
                RunDir(spec.run_dir).update_status(state="failed", error=error)
            progress.message(f"FAILED {name}: {error}\n  log: {RunDir(spec.run_dir).log}")
        else:
            progress.message(f"{state} {name} ({format_duration(seconds)})")
        return state
