"""The command line: `python -m harness.run suite=<name> agent=<name> [key=value ...] [--plan]`.

Composes the Hydra config groups, validates everything, then hands the plan's jobs to the launcher.
A command that fails validation writes nothing. Rerunning a command resumes its unfinished runs
from their checkpoints and skips finished ones (force=true starts them over).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from harness import needs
from harness.launch import format_duration
from harness.plan import ConfigError, RunSpec, choices, compose, make_plan, suite_aliases
from harness.rundir import RunDir, RunLocked, describe_holder
from harness.sweep import expand, variant
from harness.worker import EXIT_CODES
from results import equivalence, planning, reference
from suites.base import resolve

RUNNING_ELSEWHERE = "running elsewhere"
COMPARED = ("suite", "agent", "task", "seed", "protocol_overrides", "variant")  # what must match to resume

USAGE = """usage: python -m harness.run [--plan] [--help] key=value ...

  suite=NAME      one of: {suites}{aliases}
  agent=NAME      one of: {agents}
  launcher=NAME   one of: {launchers}
  cluster=NAME    SLURM cluster profile (launcher=slurm), one of: {clusters}
  task=T[,T..]    tasks of the suite (default: all)     seeds=N   runs per task (default 1)
  seed=K          first seed (default 0)                 steps=N   budget override in agent steps
  root=DIR        where run directories go (runs)        workers=N parallel local jobs (default 1)
  force=true      start finished or differently configured runs over
  name=NAME       a variant name of your own: runs go to <root>/<suite>/<agent>/<NAME>/<task>/seed<k>/
  any other key=value overrides the composed config, e.g. agent.envs=4 suite.protocol.eval_every=0
  --plan          print the jobs, the grid's budget and compute estimate, what each Dreamer run
                  will hold (replay RAM and disk, checkpoint size), and change nothing

A grid: a comma list (or Hydra's range(a,b[,step]) / choice(..)) on any key expands to the product,
e.g. agent.discrete.lr=1e-3,3e-4 agent=ppo,random suite=classic,atari26. Each combination is a
variant with its own run directories, named from the keys that vary: .../ppo/discrete.lr=0.001/...

The suite's paper protocol is the default; overriding it (steps=, suite.*) is recorded in each
run's config.yaml and marked in reports."""


def usage() -> str:
    aliases = ", ".join(f"{a} = {n}" for a, n in suite_aliases().items())
    return USAGE.format(suites=", ".join(choices("suite")), aliases=f" ({aliases})" if aliases else "",
                        agents=", ".join(choices("agent")), launchers=", ".join(choices("launcher")),
                        clusters=", ".join(choices("cluster")))


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a = _flatten({k: old.get(k) for k in COMPARED})
    b = _flatten({k: new.get(k) for k in COMPARED})
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def triage(specs: list[RunSpec], force: bool) -> list[tuple[RunSpec, str]]:
    """Decide per run: new, resume, restart (force), skip (done) or running elsewhere (its lock is held).

    Raises on a config clash."""
    decisions, clashes = [], []
    for spec in specs:
        run = RunDir(spec.run_dir)
        if run.lock.holder_if_held() is not None:  # never touched, not even with force=true
            decisions.append((spec, RUNNING_ELSEWHERE))
        elif not run.exists():
            decisions.append((spec, "new"))
        elif force:
            decisions.append((spec, "restart"))
        elif changes := config_changes(run.read_config(), spec.config):
            clashes.append(f"{spec.run_dir} was started with another config:\n    " + "\n    ".join(changes[:10]))
        elif run.read_status().get("state") == "done":
            decisions.append((spec, "skip"))
        else:
            decisions.append((spec, "resume"))
    if clashes:
        raise ConfigError("\n".join(clashes) + "\nuse force=true to start these runs over, or another root=")
    return decisions


def plan_grid(args: list[str]) -> tuple[list[RunSpec], DictConfig]:
    """The runs of every point of the grid, each run directory once, and the first point's config
    (launcher, workers and root do not vary: sweep.expand refuses lists on them)."""
    specs: dict[Path, RunSpec] = {}
    first = None
    for point in expand(args):
        cfg = compose(list(point.args))
        first = first or cfg
        for spec in make_plan(cfg, variant(cfg, point)):
            if spec.run_dir not in specs:
                specs[spec.run_dir] = spec
            elif specs[spec.run_dir].config != spec.config:  # same directory, other settings: one would be lost
                raise ConfigError(f"two points of the grid would share {spec.run_dir} with different settings "
                                  f"({' '.join(point.args)}): list values only on keys that change what a run "
                                  "computes, or give each command its own name=")
    return list(specs.values()), first


def compute_estimate(specs: list[RunSpec], cfg: DictConfig) -> list[str]:
    """The grid's total budget and, from harness/speeds.yaml, the hours its runs will take."""
    speeds = yaml.safe_load(needs.SPEEDS.read_text())
    hours: dict[str, float] = {}
    used, unknown = set(), set()
    for spec in specs:
        device, speed = needs.device(spec, cfg), needs.speed(spec, cfg, speeds)
        if speed:
            hours[device] = hours.get(device, 0.0) + spec.budget / speed / 3600
            used.add(f"{spec.agent} {device} {spec.suite} {speed:,} steps/s")
        else:
            unknown.add(f"{spec.agent} on {device} ({spec.suite})")
    lines = [f"budget: {sum(s.budget for s in specs):,} agent steps ({sum(s.budget_frames for s in specs):,} env "
             f"frames) in {len(specs)} runs"]
    for device, total in sorted(hours.items()):
        lines.append(f"estimate: {total:.3g} {device.upper()} hours ({format_duration(total * 3600)}) of runs (one "
                     f"run's wall time x runs at the speeds measured in harness/speeds.yaml: {', '.join(sorted(used))})")
    if unknown:
        lines.append(f"no measured speed (harness/speeds.yaml) for {', '.join(sorted(unknown))}: no estimate for those")
    return lines


def print_plan(decisions: list[tuple[RunSpec, str]], cfg: DictConfig) -> None:
    variants = any(s.variant for s, _ in decisions)
    rows = [("suite", "task", "agent", *(("variant",) if variants else ()), "seed", "run directory",
             "budget (agent steps)", "frames", "action")]
    rows += [(s.suite, s.task, s.agent, *((s.variant or "-",) if variants else ()), str(s.seed), str(s.run_dir),
              f"{s.budget:,}", f"{s.budget_frames:,}", a) for s, a in decisions]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    elsewhere = sum(a == RUNNING_ELSEWHERE for _, a in decisions)
    print(f"{len(decisions)} jobs: " + ", ".join(f"{sum(a == k for _, a in decisions)} {k}"
                                                for k in ("new", "resume", "restart", "skip"))
          + (f", {elsewhere} {RUNNING_ELSEWHERE}" if elsewhere else ""))
    print("\n".join(compute_estimate([s for s, _ in decisions], cfg)))
    for line in needs.needs_lines([s for s, _ in decisions], cfg):
        print(line)
    for line in seed_plan([s for s, _ in decisions]):
        print(line)


def seed_plan(specs: list[RunSpec]) -> list[str]:
    """Where the suite has published runs of the agent's method: the runs a conclusive reproduction needs
    (results.planning, at the suite's margins) beside the seeds this plan has."""
    lines = []
    for suite, agent in sorted({(s.suite, s.agent) for s in specs}):
        try:
            frame = planning.plan(suite, agent, equivalence.margin(suite))
        except ValueError:  # no published runs of this agent on this suite: nothing to plan against
            continue
        seeds = max(sum(1 for s in specs if (s.suite, s.agent, s.task) == (suite, agent, task))
                    for task in {s.task for s in specs if (s.suite, s.agent) == (suite, agent)})
        lines.append(f"seeds: {seeds} per task of {agent} on {suite}; a conclusive reproduction of the published "
                     f"{reference.counterpart(agent)} runs: {planning.summary(frame)} (per task: python -m "
                     f"results.report --plan-seeds --suite {suite} --method {agent})")
    return lines


def prepare(spec: RunSpec, action: str) -> bool:
    """Write the run's config (and a fresh status) under its lock; False if a worker holds it by now."""
    run = RunDir(spec.run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    try:
        run.lock.acquire()
    except RunLocked:  # another launcher got there between triage and now
        return False
    try:
        if action == "restart":
            run.clear()
        run.write_config(spec.config)  # a resumed run takes the new run/logger settings
        if action != "resume":
            run.update_status(state="pending", step=0, agent_step=0, budget=spec.budget_frames,
                              budget_agent_steps=spec.budget, episodes=0, last_score=None, error=None)
    finally:
        run.lock.release()
    return True


def main(argv: list[str]) -> int:
    if "--help" in argv or "-h" in argv:
        print(usage())
        return 0
    show_plan = "--plan" in argv
    args = [a for a in argv if a != "--plan"]
    try:
        specs, cfg = plan_grid(args)
        decisions = triage(specs, cfg.force)
        launcher = resolve(cfg.launcher.factory)(OmegaConf.to_container(cfg.launcher, resolve=True),
                                                 OmegaConf.to_container(cfg, resolve=True))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if show_plan:
        try:
            print_plan(decisions, cfg)
        except ConfigError as error:  # what a job needs showed that it cannot run (harness/needs.py)
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    skipped = sum(a == "skip" for _, a in decisions)
    if skipped:
        print(f"{skipped} finished runs skipped (force=true to rerun them)")
    todo = [s for s, a in decisions if a not in ("skip", RUNNING_ELSEWHERE) and prepare(s, a)]
    elsewhere = [s for s, a in decisions if a != "skip" and s not in todo]
    for spec in elsewhere:
        holder = RunDir(spec.run_dir).lock.holder_if_held()
        print(f"{spec.run_dir}: running elsewhere" + (f" ({describe_holder(holder)})" if holder else "")
              + ", not started")
    if not todo:
        return EXIT_CODES["preempted"] if elsewhere else 0
    os.environ["DREAMERBENCH_COMMAND"] = shlex.join(["python", "-m", "harness.run", *argv])
    code = launcher.launch(todo)
    return EXIT_CODES["preempted"] if code == 0 and elsewhere else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
