"""The command line: `python -m harness.run suite=<name> agent=<name> [key=value ...] [--plan]`.

Composes the Hydra config groups, validates everything, then hands the plan's jobs to the launcher.
A command that fails validation writes nothing. Rerunning a command resumes its unfinished runs
from their checkpoints and skips finished ones (force=true starts them over).
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import yaml
from omegaconf import OmegaConf

from harness.plan import ConfigError, RunSpec, choices, compose, make_plan, suite_aliases
from harness.rundir import RunDir, RunLocked, describe_holder
from harness.worker import EXIT_CODES
from suites.base import resolve

RUNNING_ELSEWHERE = "running elsewhere"
COMPARED = ("suite", "agent", "task", "seed", "protocol_overrides")  # what must match to resume

USAGE = """usage: python -m harness.run [--plan] [--help] key=value ...

  suite=NAME      one of: {suites}{aliases}
  agent=NAME      one of: {agents}
  launcher=NAME   one of: {launchers}
  cluster=NAME    SLURM cluster profile (launcher=slurm), one of: {clusters}
  task=T[,T..]    tasks of the suite (default: all)     seeds=N   runs per task (default 1)
  seed=K          first seed (default 0)                 steps=N   budget override in agent steps
  root=DIR        where run directories go (runs)        workers=N parallel local jobs (default 1)
  force=true      start finished or differently configured runs over
  any other key=value overrides the composed config, e.g. agent.envs=4 suite.protocol.eval_every=0
  --plan          print the jobs and change nothing

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


def print_plan(decisions: list[tuple[RunSpec, str]]) -> None:
    rows = [("suite", "task", "agent", "seed", "run directory", "budget (agent steps)", "frames", "action")]
    rows += [(s.suite, s.task, s.agent, str(s.seed), str(s.run_dir), f"{s.budget:,}", f"{s.budget_frames:,}", a)
             for s, a in decisions]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    elsewhere = sum(a == RUNNING_ELSEWHERE for _, a in decisions)
    print(f"{len(decisions)} jobs: " + ", ".join(f"{sum(a == k for _, a in decisions)} {k}"
                                                for k in ("new", "resume", "restart", "skip"))
          + (f", {elsewhere} {RUNNING_ELSEWHERE}" if elsewhere else ""))


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
        cfg = compose(args)
        specs = make_plan(cfg)
        decisions = triage(specs, cfg.force)
        launcher = resolve(cfg.launcher.factory)(OmegaConf.to_container(cfg.launcher, resolve=True),
                                                 OmegaConf.to_container(cfg, resolve=True))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if show_plan:
        print_plan(decisions)
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
