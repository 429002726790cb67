"""`python -m harness.status <root>`: a table of runs; exits 1 if any run failed.

A run that says 'running' while nobody holds its lock, or that has not updated its status for
STALE_AFTER seconds, is shown as 'stale' (its process died without a word, e.g. SIGKILL): rerun its
command to resume it. A run asked to stop that has not checkpointed yet shows as 'stopping'; the
'holder' column names the process that holds the run's lock (host, pid, SLURM job).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from harness.launch import format_count, format_duration
from harness.rundir import RunDir
from harness.slurm import slurm_states

STALE_AFTER = 300.0


def find_runs(root: Path) -> list[RunDir]:
    return [RunDir(p.parent) for p in sorted(root.rglob("config.yaml"))  # not in .slurm/ or a run's .wandb/
            if not any(part.startswith(".") for part in p.relative_to(root).parts)]


def age_seconds(status: dict[str, Any]) -> float | None:
    if not status.get("updated_at"):
        return None
    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(status["updated_at"])).total_seconds()


def row(run: RunDir, root: Path, slurm: tuple[str, bool] = ("", False)) -> dict[str, str]:
    status = run.read_status()
    age = age_seconds(status)
    state = status.get("state", "pending")
    holder = run.lock.holder_if_held()
    lock_abandoned = holder is None and run.lock.path.exists()  # runs from before locks have no .lock
    if state == "running" and (lock_abandoned or (age is not None and age > STALE_AFTER)):
        state = "stale"
    elif state == "running" and status.get("stopping_since"):
        state = f"stopping ({status.get('stop_reason')}, since {status['stopping_since'][11:19]} UTC)"
    slurm_text, job_lost = slurm
    if job_lost:  # its SLURM job ended before the run could say how it went
        state = "failed"
    budget = status.get("budget") or 0
    step = status.get("step") or 0
    score = status.get("last_score")
    rate = status.get("steps_per_second")
    return {
        "run": str(run.path.relative_to(root)) if run.path.is_relative_to(root) else str(run.path),
        "state": state,
        "slurm job": slurm_text,
        "holder": f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "",
        "progress": f"{format_count(step)}/{format_count(budget)} ({100 * step / budget:.0f}%)" if budget else "-",
        "last score": f"{score:.4g}" if score is not None else "-",
        "steps/s": format_count(rate) if rate else "-",
        "age": format_duration(age),
        "error": (status.get("error") or "") + (f"  (log: {status['log']})" if status.get("error") and
                                                 status.get("log") else ""),
    }


def print_table(rows: list[dict[str, str]]) -> None:
    columns = [c for c in rows[0] if any(r[c] for r in rows)]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in columns).rstrip())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.status", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, nargs="?", default=Path("runs"), help="run root (default: runs)")
    args = parser.parse_args(argv)
    if not args.root.exists():
        print(f"error: {args.root} does not exist", file=sys.stderr)
        return 2
    runs = find_runs(args.root)
    if not runs:
        print(f"no runs under {args.root}")
        return 0
    slurm = slurm_states(run.path for run in runs)  # empty unless a run was submitted to SLURM
    rows = [row(run, args.root, slurm.get(run.path, ("", False))) for run in runs]
    print_table(rows)
    kinds = [r["state"].split(" (")[0] for r in rows]
    counts = {s: kinds.count(s) for s in dict.fromkeys(kinds)}
    print(f"{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
