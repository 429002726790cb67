"""One job: run or resume the run in a directory. The local and SLURM launchers both call this.

`python -m harness.worker <run_dir>` exits 0 when the run is done, 3 when it was stopped by a signal
(checkpoint written, rerun to resume) and 1 when it failed (the error is in status.json).
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from pathlib import Path

from harness import loop
from harness.rundir import RunDir

EXIT_CODES = {"done": 0, "failed": 1, "preempted": 3}
MAX_ERROR_CHARS = 300


def run_job(run_dir: Path | str) -> str:
    """Run the job in `run_dir`; returns 'done', 'preempted' or 'failed'. Never raises."""
    run = RunDir(run_dir)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in loop.STOP_SIGNALS}
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
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m harness.worker <run_dir>")
    sys.exit(EXIT_CODES[run_job(sys.argv[1])])


if __name__ == "__main__":
    main()
