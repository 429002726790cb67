"""The line protocol between `harness.peers` and a side's driver, and the timing loop all sides share.

The driver builds its side's agent for the point given as JSON in argv[1], runs the warm-up updates and
policy steps (compilation happens there), then answers one JSON line per command on stdin:
`{"cmd": "update", "n": k}` -> `{"times": [...]}` (seconds per update), `{"cmd": "policy", "n": k}` ->
`{"times": [...]}` (seconds per policy step), `{"cmd": "quit"}` -> `{"peak_rss_gb": ..., ...}`.
Every side is timed here, with the same clock, around the same calls: `Side.update` (one gradient update
on a batch sampled before the timing, waited for until its results exist) and `Side.policy_step` (one
env's observation from numpy to an action in numpy).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any, Callable, Protocol


class Side(Protocol):
    def update(self) -> None: ...
    def policy_step(self) -> None: ...
    def info(self) -> dict[str, Any]: ...


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _timed(step: Callable[[], None], n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def serve(build: Callable[[dict[str, Any]], Side]) -> None:
    """Build the side for the point in argv[1], warm it up, then answer commands until `quit`."""
    point = json.loads(sys.argv[1])
    # The protocol owns the real stdout; the libraries' own prints go to stderr (the bench's log).
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    start = time.perf_counter()
    side = build(point)
    _timed(side.policy_step, point["warmup_policy"])
    _timed(side.update, point["warmup"])
    channel.write(json.dumps({"ready": True, "setup_s": time.perf_counter() - start}) + "\n")
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "update":
            reply: dict[str, Any] = {"times": _timed(side.update, command["n"])}
        elif command["cmd"] == "policy":
            reply = {"times": _timed(side.policy_step, command["n"])}
        elif command["cmd"] == "quit":
            channel.write(json.dumps({"peak_rss_gb": peak_rss_gb(), **side.info()}) + "\n")
            return
        else:
            reply = {"error": f"unknown command {command!r}"}
        channel.write(json.dumps(reply) + "\n")
