"""`python -m harness.gpucheck`: what a GPU node should run first, in one command, with one report.

Parts (run alone with --parts), in this order:
  devices      JAX sees a GPU (kind, memory) and torch sees CUDA
  equivalence  `pytest -m "official and bfloat16"`: ours against the official code in bfloat16 on the GPU
  bench        `python -m harness.bench --against official --dtype default`: update time and MFU
  dreamer      DreamerV3 on DMC proprio walker_walk through `python -m harness.run`, stopped after --minutes
  ppo          PPO on CartPole-v1 with agent.device=cuda, 50k agent steps or --minutes, whichever comes first
Writes gpucheck.json and gpucheck.md to --out. Exits 0 when every part ran passed, 1 when one failed, and 2
at once without a GPU. Every child process runs without JAX's preallocation, so that the ones that share
the GPU (ours and the official code) both fit and the memory peaks are what each part used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
PARTS = ("devices", "equivalence", "bench", "dreamer", "ppo")
NO_GPU = "no GPU: jax sees only {}; this command needs a CUDA GPU and the gpu extra: pip install -e '.[all,gpu]'"
CHILD_ENV = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}


def parse_parts(text: str) -> list[str]:
    """The parts named in `text` (comma-separated), in PARTS' order; ValueError naming the valid ones."""
    named = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(named) - set(PARTS))
    if unknown or not named:
        raise ValueError(f"--parts takes a comma-separated subset of {', '.join(PARTS)}; got {text!r}")
    return [p for p in PARTS if p in named]


def probe() -> dict[str, Any]:
    """What JAX and torch see. Runs in a child process: this one must hold no GPU memory of its own."""
    import jax

    found: dict[str, Any] = {"jax_backend": jax.default_backend(), "jax_devices": [
        {"kind": d.device_kind, "memory_gb": (d.memory_stats() or {}).get("bytes_limit", 0) / 2**30 or None}
        for d in jax.devices()]}
    if found["jax_backend"] == "gpu":
        try:
            import torch
        except ImportError as error:
            return {**found, "torch_cuda": False, "torch_device": f"torch missing ({error}): the ppo extra"}
        found["torch_cuda"] = torch.cuda.is_available()
        found["torch_device"] = torch.cuda.get_device_name(0) if found["torch_cuda"] else None
    return found


@contextlib.contextmanager
def gpu_memory_peak() -> Iterator[list[float]]:
    """A list that holds, after the block, the peak GB the GPUs used meanwhile (nvidia-smi, which counts
    every process's memory); empty without nvidia-smi."""
    peak, done = [], threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout
                peak[:] = [max(peak + [sum(float(x) for x in out.split()) / 1024])]  # MiB per GPU
            except (OSError, ValueError, subprocess.TimeoutExpired):
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()


def run_logged(command: list[str], log: Path, limit_s: float | None = None) -> int:
    """`command`'s exit code, its output in `log`; after `limit_s` it gets SIGTERM (checkpoint and stop)."""
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=CHILD_ENV)
        try:
            return process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            return process.wait()


def official_side(args: argparse.Namespace) -> str:
    """Sets up .venv-official with its CUDA jax (unless --no-install); a note unless its jax sees the GPU."""
    from agents.official import setup

    python = setup.official_python() if args.no_install else setup.setup(cuda=True)
    backend = subprocess.run([str(python), "-c", "import jax; print(jax.default_backend())"], env=CHILD_ENV,
                             capture_output=True, text=True, check=True).stdout.split()[-1]
    return "" if backend == "gpu" else (f"; the official side ran on its {backend}: .venv-official has no CUDA jax "
                                        "(python -m agents.official.setup --cuda)")


def part_equivalence(args: argparse.Namespace, log: Path) -> dict[str, Any]:
    note = official_side(args)
    code = run_logged([sys.executable, "-m", "pytest", "-m", "official and bfloat16", "tests/official", "-q"], log)
    last = (log.read_text().strip().splitlines() or ["no output"])[-1].strip("= ")
    return {"passed": code == 0, "summary": ("no test is marked bfloat16" if code == 5 else last) + note}


def part_bench(args: argparse.Namespace, log: Path) -> dict[str, Any]:
    from harness.peers import mfu, stats

    note, out = official_side(args), args.out / "peers.json"
    code = run_logged([sys.executable, "-m", "harness.bench", "--against", "official", "--dtype", "default",
                       "--no-install", "--points", args.points, "--out", str(out)], log)
    if code != 0:
        return {"passed": False, "summary": f"harness.bench exited {code}"}
    data = json.loads(out.read_text())
    points, cells = {}, []
    for point, by_side in data["results"].items():
        flops, device = by_side["ours"]["info"].get("flops"), by_side["ours"]["info"]["device"]
        points[point] = {side: {"update_s": stats(r["update_s"])[0], "platform": r["info"].get("platform"),
                                "mfu": mfu(flops, stats(r["update_s"])[0], device)} for side, r in by_side.items()}
        cells.append(f"{point} " + ", ".join(f"{side} {r['update_s']:.4f} s" + (f" (MFU {100 * r['mfu']:.1f}%)"
                                                                               if r["mfu"] else "")
                                             for side, r in points[point].items()))
    if not any(p["ours"]["mfu"] for p in points.values()):  # XLA gave no FLOP count, or the peak is unknown
        note = f"; MFU not reported: no FLOP count or no known peak bf16 FLOP/s for {device} (harness/peers.py)" + note
    return {"passed": True, "summary": "; ".join(cells) + note, "points": points, "table": data["table"]}


def part_run(name: str, overrides: list[str], limit_s: float, log: Path, out: Path) -> dict[str, Any]:
    """One run through `python -m harness.run`, asked to stop after `limit_s`; what its files say."""
    from harness.rundir import RunDir

    root = out / "runs" / name
    code = run_logged([sys.executable, "-m", "harness.run", *overrides, f"root={root}", "force=true"], log, limit_s)
    status_files = sorted(root.rglob("status.json"))
    if not status_files:
        return {"passed": False, "summary": f"harness.run exited {code} before making a run directory"}
    run = RunDir(status_files[0].parent)
    status, meta = run.read_status(), run.read_meta()
    lines = [json.loads(x) for x in run.metrics.read_text().splitlines()] if run.metrics.exists() else []
    trained = [x for x in lines if any("loss" in k for k in x)]
    speed = trained[-1]["fps/env"] if trained else None
    passed = status.get("state") in ("done", "preempted") and bool(trained) and not status.get("error")
    summary = (f"{status.get('state')} at agent step {status.get('agent_step', 0):,}, "
               + (f"{speed:.1f} agent steps/s training" if speed else "no update logged")
               + f", meta.json's device {meta.get('device', '?')}"
               + (f", error: {status['error']}" if status.get("error") else ""))
    return {"passed": passed, "summary": summary, "run_dir": str(run.path), "exit_code": code,
            "agent_step": status.get("agent_step"), "steps_per_second": speed, "device": meta.get("device")}


def run_part(name: str, work: Callable[[Path], dict[str, Any]], out: Path) -> dict[str, Any]:
    """`work(log)` timed, with the GPU memory peak; an exception fails the part with its message."""
    log = out / f"{name}.log"
    print(f"{name} ...", flush=True)
    start = time.monotonic()
    with gpu_memory_peak() as peak:
        try:
            result = work(log)
        except Exception as error:  # one part's failure must not hide the others' results
            result = {"passed": False, "summary": f"{type(error).__name__}: {error}"}
    result.update(seconds=time.monotonic() - start, gpu_memory_peak_gb=(peak or [None])[0], log=str(log))
    if not result["passed"] and log.exists():
        result["log_tail"] = log.read_text()[-3000:]
    print(f"{name}: {'pass' if result['passed'] else 'FAIL'} ({result['seconds']:.0f} s) {result['summary']}",
          flush=True)
    return result


def markdown(report: dict[str, Any]) -> str:
    """The summary page: the machine, then one row per part (not run, pass or FAIL), then details."""
    machine, gpu = report["machine"], report["gpu"]
    kinds = ", ".join(f"{d['kind']} ({d['memory_gb']:.0f} GB)" if d["memory_gb"] else d["kind"]
                      for d in gpu["jax_devices"])
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if k in ("jax", "jaxlib", "torch"))
    lines = [f"# GPU check: {'PASS' if report['passed'] else 'FAIL'}", "",
             f"{machine['date']}; {kinds}; torch sees {gpu.get('torch_device') or 'no CUDA device'}; "
             f"{machine['cpu']} x{machine['cores']}, {machine['memory_gb']:.0f} GB; {versions}", "",
             "| part | result | time, s | peak GPU memory, GB | summary |", "|---|---|---|---|---|"]
    for name in PARTS:
        part = report["parts"].get(name)
        if part is None:
            lines.append(f"| {name} | not run | - | - | - |")
            continue
        peak = "-" if part.get("gpu_memory_peak_gb") is None else f"{part['gpu_memory_peak_gb']:.1f}"
        lines.append(f"| {name} | {'pass' if part['passed'] else 'FAIL'} | {part['seconds']:.0f} | {peak} | "
                     f"{part['summary'].replace('|', '/')} |")
    for name, part in report["parts"].items():
        details = [f"```text\n{part['table']}\n```"] if "table" in part else []
        details += [f"Last lines of {part['log']}:\n\n```text\n{part['log_tail']}\n```"] if "log_tail" in part else []
        lines += [f"\n## {name}\n", *details] if details else []
    return "\n".join(lines) + "\n"


def write_summary(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """gpucheck.json (everything) and gpucheck.md (the table) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpucheck.json").write_text(json.dumps(report, indent=1))
    (out / "gpucheck.md").write_text(markdown(report))
    return out / "gpucheck.json", out / "gpucheck.md"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.gpucheck", description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:8]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts (default: all)")
    parser.add_argument("--out", type=Path, default=Path("gpucheck"), help="the report's folder (default gpucheck/)")
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="the dreamer run's length and the ppo run's limit (default 5)")
    parser.add_argument("--points", default="dmc_1m,dmc_12m,crafter_1m,crafter_12m",
                        help="the bench's points (default: all four)")
    parser.add_argument("--no-install", action="store_true", help="use .venv-official as it is; never pip")
    args = parser.parse_args(argv)
    try:
        parts = parse_parts(args.parts)
    except ValueError as error:
        parser.error(str(error))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        gpu = pool.apply(probe)
    if gpu["jax_backend"] != "gpu":
        print(NO_GPU.format(gpu["jax_backend"]), file=sys.stderr)
        return 2
    from harness.bench import machine

    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    limit_s = args.minutes * 60
    work: dict[str, Callable[[Path], dict[str, Any]]] = {
        "devices": lambda log: {"passed": bool(gpu.get("torch_cuda")), "summary": "jax: " + ", ".join(
            d["kind"] for d in gpu["jax_devices"]) + f"; torch: {gpu.get('torch_device') or 'no CUDA device'}"},
        "equivalence": lambda log: part_equivalence(args, log),
        "bench": lambda log: part_bench(args, log),
        "dreamer": lambda log: part_run("dreamer", ["suite=dmc_proprio", "task=walker_walk", "agent=dreamerv3"],
                                        limit_s, log, args.out),
        "ppo": lambda log: part_run("ppo", ["suite=classic", "task=CartPole-v1", "agent=ppo", "agent.device=cuda",
                                            "steps=50000"], limit_s, log, args.out),
    }
    results = {name: run_part(name, work[name], args.out) for name in parts}
    report = {"passed": all(r["passed"] for r in results.values()), "machine": machine(), "gpu": gpu,
              "parts": results}
    for path in write_summary(report, args.out):
        print(f"wrote {path}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
