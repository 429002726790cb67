"""Our DreamerV3 against the peers' own training code, timed side by side in one run.

    python -m harness.bench --against official,sheeprl     # any subset; see `python -m harness.bench -h`
    python -m harness.peers setup sheeprl                  # create .venv-sheeprl alone

Every side runs in its own process and virtual environment: ours in this one, the official code
(dreamer 3.3.1) in .venv-official (agents/official/setup.py), sheeprl 0.8.4 in .venv-sheeprl (made here,
torch pinned). Each process builds its side's agent for the point, compiles and warms up, then waits;
the bench asks the sides in turn (ours, official, sheeprl, ours, ...) for a few updates at a time, so
a change in the machine's load falls on all of them. What is timed on every side (harness/bench_peers/
protocol.py): one gradient update on a batch 16 x 64 sampled beforehand (sampling and writing latents
back to the replay are excluded on every side), waited for until its results exist; one policy step for
one env, numpy in and numpy out; and the process's peak RSS (compilation included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from agents.official import setup as official_setup
from harness.worker import worker_environment

REPO = Path(__file__).resolve().parents[1]
SIDES = ("ours", "official", "sheeprl")
PEERS = SIDES[1:]
# name -> (task, size, label in the table)
POINTS = {
    "dmc_1m": ("dmc_cartpole", "1m", "DMC cartpole, vector, 1m"),
    "dmc_12m": ("dmc_cartpole", "12m", "DMC cartpole, vector, 12m"),
    "crafter_1m": ("crafter", "1m", "Crafter 64x64, 1m"),
    "crafter_12m": ("crafter", "12m", "Crafter 64x64, 12m"),
}
SHEEPRL_VENV = REPO / ".venv-sheeprl"
# sheeprl 0.8.4 accepts torch 2.13 (checked 2026-11-30); unpinned, torch pulls GBs of CUDA on CPU machines.
SHEEPRL_REQUIREMENTS = ("sheeprl==0.8.4", "torch==2.13.0")
STAMP = ".dreamerbench-requirements"
# Dense bfloat16 peak FLOP/s per start of the device kind, for MFU (vendor data sheets, without sparsity).
# The first match counts: the PCIe and NVL H100s before the SXM's kind, "NVIDIA H100 80GB HBM3".
PEAK_BF16_FLOPS = {"NVIDIA H100 PCIe": 756e12, "NVIDIA H100 NVL": 835e12, "NVIDIA H100": 989e12,
                   "NVIDIA H200": 989e12, "NVIDIA A100": 312e12, "NVIDIA L4": 121e12}


class PeerError(RuntimeError):
    """A peer's venv is missing or could not be made, or its driver failed; the message says what to do."""


def parse_against(text: str) -> list[str]:
    peers = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown or not peers:
        raise PeerError(f"--against takes a comma-separated subset of {', '.join(PEERS)}; got {text!r}")
    return [p for p in PEERS if p in peers]  # table order, no repeats


def parse_points(text: str) -> list[str]:
    points = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(points) - set(POINTS))
    if unknown or not points:
        raise PeerError(f"--points takes a comma-separated subset of {', '.join(POINTS)}; got {text!r}")
    return points


# ----- virtual environments ------------------------------------------------------------------------

def sheeprl_python(venv: Path | None = None) -> Path:
    venv = venv or SHEEPRL_VENV
    python = venv / "bin" / "python"
    if not python.exists() or not (venv / STAMP).exists():
        raise PeerError(f"{venv} is not set up: run `python -m harness.peers setup sheeprl` "
                        "(or drop --no-install to let the bench make it)")
    return python


def setup_sheeprl(venv: Path | None = None) -> Path:
    """`venv` with SHEEPRL_REQUIREMENTS; pip runs only when they changed since the last setup."""
    venv = venv or SHEEPRL_VENV
    wanted = "\n".join(SHEEPRL_REQUIREMENTS) + "\n"
    if (venv / STAMP).exists() and (venv / STAMP).read_text() == wanted:
        return venv / "bin" / "python"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"installing {' '.join(SHEEPRL_REQUIREMENTS)} into {venv}", flush=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *SHEEPRL_REQUIREMENTS],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise PeerError(f"pip could not install {' '.join(SHEEPRL_REQUIREMENTS)} into {venv} (exit "
                        f"{done.returncode}); rerun `python -m harness.peers setup sheeprl` once it is fixed:\n"
                        f"{done.stderr[-3000:]}")
    (venv / STAMP).write_text(wanted)
    return venv / "bin" / "python"


def side_python(side: str, install: bool) -> Path:
    """The python that runs `side`'s driver; with `install`, the peer's venv is made when missing."""
    if side == "ours":
        return Path(sys.executable)
    if side == "sheeprl":
        return setup_sheeprl() if install else sheeprl_python()
    try:
        return official_setup.setup() if install else official_setup.official_python()
    except official_setup.OfficialSetupError as error:
        raise PeerError(f"official: {error}") from error


# ----- the run --------------------------------------------------------------------------------------

def schedule(sides: Sequence[str], rounds: int) -> list[str]:
    """The order in which the sides are timed: round-robin, so slow phases of the machine hit each."""
    return [side for _ in range(rounds) for side in sides]


class Driver:
    """One side's driver process (harness/bench_peers/<side>.py) for one point."""

    def __init__(self, side: str, python: Path, point: dict[str, Any], log: Path):
        self.side, self.log = side, log
        # The sides share one GPU at once: none may take JAX's default 75% of its memory when it starts.
        env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
        with log.open("w") as stderr:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [str(python), "-m", f"harness.bench_peers.{side}", json.dumps(point)], cwd=REPO,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
                env=worker_environment(env) if side == "ours" else env)  # ours as the harness runs it
        self.ready = self._reply()

    def _reply(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            tail = self.log.read_text()[-3000:]
            raise PeerError(f"the {self.side} driver exited (code {self.process.returncode}); its log "
                            f"{self.log} ends:\n{tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise PeerError(f"{self.side}: {reply['error']}")
        return reply

    def ask(self, cmd: str, n: int = 0) -> dict[str, Any]:
        self.process.stdin.write(json.dumps({"cmd": cmd, "n": n}) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class SideResult:
    update_s: list[float] = field(default_factory=list)
    policy_s: list[float] = field(default_factory=list)
    peak_rss_gb: float = float("nan")
    info: dict[str, Any] = field(default_factory=dict)


def run_point(point: dict[str, Any], pythons: dict[str, Path], rounds: int, per_round: int,
              policy_per_round: int, logs: Path) -> dict[str, SideResult]:
    """Start every side (one at a time, each compiles alone), then time them round-robin."""
    results = {side: SideResult() for side in pythons}
    drivers: dict[str, Driver] = {}
    try:
        for side, python in pythons.items():
            print(f"  starting {side} ...", flush=True)
            drivers[side] = Driver(side, python, point, logs / f"{point['name']}_{side}.log")
        for side in schedule(list(drivers), rounds):
            results[side].update_s += drivers[side].ask("update", per_round)["times"]
        for side in schedule(list(drivers), rounds):
            results[side].policy_s += drivers[side].ask("policy", policy_per_round)["times"]
        for side, driver in drivers.items():
            final = driver.ask("quit")
            results[side].peak_rss_gb = final.pop("peak_rss_gb")
            results[side].info = {**final, "setup_s": driver.ready["setup_s"]}
    finally:
        for driver in drivers.values():
            driver.close()
    return results


# ----- the table ------------------------------------------------------------------------------------

def stats(times: Sequence[float]) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile."""
    p10, median, p90 = np.percentile(np.asarray(times, float), [10, 50, 90])
    return float(median), float(p10), float(p90)


def _cell(times: Sequence[float] | None, scale: float = 1.0, digits: int = 3) -> str:
    if not times:
        return "-"
    median, p10, p90 = (x * scale for x in stats(times))
    return f"{median:.{digits}f} ({p10:.{digits}f}-{p90:.{digits}f})"


def mfu(flops: float | None, seconds: float, device: str) -> float | None:
    """Model FLOP utilisation: XLA's FLOP count of our update over the time, against the device's peak."""
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if device.startswith(k)), None)
    return flops / seconds / peak if flops and peak else None


def format_tables(results: dict[str, dict[str, SideResult]], sides: Sequence[str]) -> str:
    """The ratio table (median s/update, p10-p90), then policy step, peak RSS and, on a GPU, MFU."""
    peers = [s for s in sides if s != "ours"]
    head = "| point | " + " | ".join(sides)
    lines = ["Update, s (median, p10-p90):", "", head + " | best peer / ours |",
             "|---" * (len(sides) + 2) + "|"]
    for name, by_side in results.items():
        row = [_cell(by_side[s].update_s) if s in by_side else "-" for s in sides]
        peer_medians = {p: stats(by_side[p].update_s)[0] for p in peers if p in by_side and by_side[p].update_s}
        ratio = "-"
        if peer_medians and by_side.get("ours") and by_side["ours"].update_s:
            best = min(peer_medians, key=peer_medians.get)
            value = peer_medians[best] / stats(by_side["ours"].update_s)[0]
            ratio = f"{value:.2f}x" + ("" if value >= 1 else f" ({best} is faster)")
        lines.append(f"| {POINTS[name][2]} | " + " | ".join(row) + f" | {ratio} |")
    lines += ["", "Policy step, 1 env, ms (median, p10-p90):", "", head + " |", "|---" * (len(sides) + 1) + "|"]
    for name, by_side in results.items():
        row = [_cell(by_side[s].policy_s, 1e3, 2) if s in by_side else "-" for s in sides]
        lines.append(f"| {POINTS[name][2]} | " + " | ".join(row) + " |")
    lines += ["", "Peak RSS, GB:", "", head + " |", "|---" * (len(sides) + 1) + "|"]
    for name, by_side in results.items():
        row = [f"{by_side[s].peak_rss_gb:.2f}" if s in by_side else "-" for s in sides]
        lines.append(f"| {POINTS[name][2]} | " + " | ".join(row) + " |")
    # The update computes the same on every side (the fidelity tests): XLA's FLOP count of ours is the
    # numerator for all; MFU needs the device's peak, known for GPUs only.
    gpu = any(r.info.get("platform") == "gpu" for by_side in results.values() for r in by_side.values())
    title = "MFU (XLA's FLOP count of our update / median time / device peak bf16)" if gpu else \
        "GFLOP/s (XLA's FLOP count of our update / median time)"
    lines += ["", f"{title}:", "", head + " | GFLOP per update |", "|---" * (len(sides) + 2) + "|"]
    for name, by_side in results.items():
        flops = by_side["ours"].info.get("flops") if "ours" in by_side else None
        device = by_side["ours"].info.get("device", "") if "ours" in by_side else ""
        cells = []
        for s in sides:
            if s not in by_side or not flops or not by_side[s].update_s:
                cells.append("-")
                continue
            seconds = stats(by_side[s].update_s)[0]
            value = mfu(flops, seconds, device) if gpu else flops / seconds / 1e9
            cells.append("-" if value is None else f"{100 * value:.1f}%" if gpu else f"{value:.1f}")
        total = f"{flops / 1e9:.1f}" if flops else "-"
        lines.append(f"| {POINTS[name][2]} | " + " | ".join(cells) + f" | {total} |")
    return "\n".join(lines)


def compare(against: list[str], points: list[str], rounds: int, per_round: int, policy_per_round: int,
            warmup: int, install: bool, dtype: str) -> tuple[dict[str, dict[str, SideResult]], str]:
    """Run every point; prints each point's table as it completes. Returns the results and final table."""
    sides = ["ours", *against]
    pythons = {side: side_python(side, install) for side in sides}  # every venv before any timing
    results: dict[str, dict[str, SideResult]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        logs = Path(tmp)
        for name in points:
            task, size, label = POINTS[name]
            point = {"name": name, "task": task, "size": size, "batch": 16, "length": 64, "dtype": dtype,
                     "warmup": warmup, "warmup_policy": 20}
            print(f"{label}: {rounds} rounds of {per_round} updates per side, {' / '.join(sides)} in turn",
                  flush=True)
            start = time.perf_counter()
            results[name] = run_point(point, pythons, rounds, per_round, policy_per_round, logs)
            print(format_tables({name: results[name]}, sides), f"\n({time.perf_counter() - start:.0f} s)\n",
                  flush=True)
    return results, format_tables(results, sides)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Create a peer's virtual environment for the bench.")
    parser.add_argument("command", choices=["setup"])
    parser.add_argument("peer", choices=list(PEERS))
    args = parser.parse_args(argv)
    try:
        print(side_python(args.peer, install=True))
    except PeerError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
