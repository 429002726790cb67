"""The SLURM launcher: a plan's runs as one job array, submitted through submitit.

Each array task runs the worker of the local launcher (`harness.worker.run_job`) on one run
directory and appends its output to `<run_dir>/worker.log`. A job's time limit and a preemption both
arrive as a signal: SIGUSR2 `signal_delay_s` before the limit (sbatch --signal), `scancel --signal`,
or SIGTERM from the scheduler. The worker then writes a checkpoint and returns 'preempted', and the
task requeues itself (`scontrol requeue`): the same array task starts again with the same run
directory and resumes from that checkpoint, at most `max_requeues` times per submission.

Signals: submitit installs its own handlers before it calls the task (SIGUSR2: checkpoint and
requeue through submitit, SIGTERM: ignore). run_job puts the loop's handlers in their place while the
run runs, and the task ignores both signals once run_job has returned, so each stop requeues once.

Arrays are submitted held (sbatch --hold) and released once every run's status.json names its job,
so a task never races the launcher for that file.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from harness.launch import Progress
from harness.logs import slurm_job_id
from harness.plan import ConfigError, RunSpec, choices
from harness.rundir import RunDir
from harness.worker import EXIT_CODES, run_job, worker_environment

# Resources of one run when neither the cluster profile nor the agent's `slurm:` block sets them.
RESOURCE_DEFAULTS = {"gpus": 0, "cpus": 1, "mem_gb": 4, "time_min": 60}
# SLURM states (lower case) of a job that has not ended yet.
ACTIVE = {"pending", "running", "requeued", "requeue_hold", "requeue_fed", "configuring", "completing",
          "suspended", "resizing", "signaling", "stage_out"}
# A signal lands this long after `time limit - signal_delay_s` at worst (slurmctld checks limits every 30 s).
TIMEOUT_MARGIN_S = 60


class RunFailed(RuntimeError):
    """The worker reported the run as failed; SLURM marks the array task FAILED."""


@dataclasses.dataclass(frozen=True)
class RequeuePolicy:
    max_requeues: int
    requeue_on_timeout: bool
    time_limit_s: float
    signal_delay_s: float

    def refusal(self, restarts: int, elapsed_s: float) -> str | None:
        """Why a stopped run must not be requeued, or None to requeue it."""
        if restarts >= self.max_requeues:
            return f"requeued {restarts} times already (launcher.max_requeues={self.max_requeues})"
        timed_out = elapsed_s >= self.time_limit_s - self.signal_delay_s - TIMEOUT_MARGIN_S
        if timed_out and not self.requeue_on_timeout:
            return "the job reached its time limit and launcher.requeue_on_timeout=false"
        return None


# --- inside the job ---------------------------------------------------------------------------
def run_task(run_dir: str, policy: RequeuePolicy) -> str:
    """One array task: run or resume the run in `run_dir`; requeue the task when a signal stopped it."""
    started = time.monotonic()
    run = RunDir(run_dir)
    job = slurm_job_id()
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    print(f"output continues in {run.log}", flush=True)
    _append_output_to(run.log)
    print(f"=== SLURM job {job} on {socket.gethostname()}, start {restarts + 1}", flush=True)
    # A requeued task may start while its previous instance, or a task of another submission, still
    # writes its checkpoint: wait for the lock as long as a stop may take, then leave the run to it.
    state = run_job(run.path, lock_wait_s=policy.signal_delay_s)
    for sig in (signal.SIGTERM, signal.SIGUSR2):  # a late second signal must not requeue again
        signal.signal(sig, signal.SIG_IGN)
    if state == "failed":
        raise RunFailed(f"{run.read_status().get('error')} (log: {run.log})")
    if state == "preempted":
        refusal = policy.refusal(restarts, time.monotonic() - started)
        if refusal:
            print(f"=== not requeued: {refusal}; rerun the command to resume", flush=True)
        elif _requeue(job):
            # No result file (the requeued task writes it), and no waiting for stray threads of the
            # agent: everything of the run is on disk already.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_CODES["preempted"])
    return state


def _append_output_to(log: Path) -> None:
    """Send this process's stdout and stderr, and its children's, to the end of the run's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _requeue(job: str | None) -> bool:
    result = subprocess.run(["scontrol", "requeue", str(job)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:  # e.g. the scheduler requeues or cancels it itself
        print(f"=== scontrol requeue {job} failed: {result.stderr.strip()}", flush=True)
        return False
    print(f"=== requeued job {job}: it resumes from the checkpoint", flush=True)
    return True


# --- job states -------------------------------------------------------------------------------
def _expand(job_field: str) -> list[str]:
    """'12_[0-2,5%2]' -> ['12_0', '12_1', '12_2', '12_5']; '12_3' and '12' stay as they are."""
    if "_[" not in job_field:
        return [job_field]
    array, ranges = job_field.split("_[", 1)
    ids = []
    for part in ranges.rstrip("]").split("%")[0].split(","):
        low, _, high = part.partition("-")
        ids += [f"{array}_{i}" for i in range(int(low), int(high or low) + 1)]
    return ids


def _parse(output: str) -> dict[str, str]:
    states = {}
    for line in output.splitlines():
        job_field, _, state = line.strip().partition("|")
        for job in _expand(job_field):
            states[job] = state.split()[0].lower() if state else "unknown"  # 'CANCELLED by 0' -> 'cancelled'
    return states


def _output(command: list[str]) -> str | None:
    """stdout of a SLURM command, or None where it fails or SLURM is not installed here."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def query_states(job_ids: Iterable[str]) -> dict[str, str]:
    """The SLURM state (lower case: pending, running, completed, failed, ...) of each job id.

    squeue answers for the jobs slurmctld still holds, sacct for older ones; a job neither knows
    (no accounting, purged, or no SLURM on this machine) is 'unknown'.
    """
    wanted = set(job_ids)
    if not wanted:
        return {}
    found = _parse(_output(["squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%T"]) or "")
    missing = sorted(wanted - set(found))
    if missing:
        found.update(_parse(_output(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(missing)]) or ""))
    return {job: found.get(job, "unknown") for job in wanted}


def slurm_states(run_dirs: Iterable[Path]) -> dict[Path, tuple[str, bool]]:
    """('<job id> <state>', lost) of each run that was submitted to SLURM, for `harness.status`.

    A run that was stopped by a signal and waits in the queue again shows as 'requeued'; a job that
    ended before its run recorded an outcome (a failing setup line, scancel, out of memory) is
    `lost` and shows the log of the job.
    """
    statuses = {Path(d): RunDir(d).read_status() for d in run_dirs}
    jobs = {d: s["slurm_job_id"] for d, s in statuses.items() if s.get("slurm_job_id")}
    states = query_states(jobs.values())
    shown = {}
    for run_dir, job in jobs.items():
        state = states[job]
        run_state = statuses[run_dir].get("state")
        held = RunDir(run_dir).lock.holder_if_held() is not None  # e.g. by the job of an earlier submission
        lost = state not in ACTIVE | {"unknown"} and run_state in ("pending", "running") and not held
        if state == "pending" and run_state == "preempted":
            state = "requeued"
        elif lost:
            state += f" (log: {statuses[run_dir].get('slurm_log')})"
        shown[run_dir] = (f"{job} {state}", lost)
    return shown


# --- the launcher -----------------------------------------------------------------------------
def devices_needed(agent: dict[str, Any]) -> int:
    """The GPUs an agent's `devices: {train: N, policy: same | last}` asks for (Dreamer's): N, plus one for
    a policy on a device of its own; 1 for an agent without the setting."""
    devices = agent.get("devices") or {}
    return int(devices.get("train", 1)) + (devices.get("policy") == "last")


def resources(root_config: dict[str, Any]) -> dict[str, Any]:
    """Per field: the cluster profile's value, else the agent's `slurm:` default, else RESOURCE_DEFAULTS.

    The agent's GPU default grows to what its `devices` ask for; a profile's `gpus` that gives a run on
    GPUs fewer than that is refused, as is a run without GPUs whose train step asks for several devices."""
    cluster, agent = root_config["cluster"], root_config["agent"].get("slurm") or {}
    picked = {}
    for field, default in RESOURCE_DEFAULTS.items():
        value = cluster.get(field) if cluster.get(field) is not None else agent.get(field, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < (1 if field != "gpus" else 0):
            raise ConfigError(f"invalid value for 'cluster.{field}': {value!r} (expected a number >= 1, gpus >= 0)")
        picked[field] = value
    train = (root_config["agent"].get("devices") or {}).get("train", 1)
    needed = devices_needed(root_config["agent"])
    source = "cluster.gpus" if cluster.get("gpus") is not None else "agent.slurm.gpus"
    if not picked["gpus"] and train > 1:
        raise ConfigError(f"agent.devices.train={train} needs as many GPUs, but {source}=0 runs on the CPU")
    if picked["gpus"] and cluster.get("gpus") is None:
        picked["gpus"] = max(picked["gpus"], needed)
    elif picked["gpus"] and picked["gpus"] < needed:
        raise ConfigError(f"cluster.gpus={picked['gpus']} is fewer GPUs than agent.devices asks for: {needed} "
                          f"(train {train}{' + 1 for the policy' if needed > train else ''}); "
                          f"set cluster.gpus={needed} or leave it null")
    return picked


class SlurmLauncher:
    def __init__(self, config: dict[str, Any], root_config: dict[str, Any]):
        self.cluster = root_config["cluster"]
        if self.cluster.get("name") in (None, "none"):
            profiles = [c for c in choices("cluster") if c != "none"]
            raise ConfigError(f"launcher=slurm needs a cluster profile: cluster=<name>, one of {', '.join(profiles)}"
                              " (slurm/clusters/<name>.yaml)")
        self.settings = config
        self.root = Path(root_config["root"])
        self.resources = resources(root_config)
        self.folder = Path(config["folder"] or self.root / ".slurm").resolve()
        self.policy = RequeuePolicy(config["max_requeues"], config["requeue_on_timeout"],
                                    self.resources["time_min"] * 60, config["signal_delay_s"])
        if not 0 < self.policy.signal_delay_s < self.policy.time_limit_s:
            raise ConfigError(f"launcher.signal_delay_s={self.policy.signal_delay_s} must be between 0 and the time "
                              f"limit ({self.resources['time_min']} min)")

    def sbatch_parameters(self, job_name: str) -> dict[str, Any]:
        """The profile and resources as submitit's SlurmExecutor parameters."""
        c, r = self.cluster, self.resources
        gpu = f"gpu:{c['gpu_type']}:{r['gpus']}" if c.get("gpu_type") else f"gpu:{r['gpus']}"
        parameters = {
            "job_name": job_name, "partition": c.get("partition"), "account": c.get("account"), "qos": c.get("qos"),
            "constraint": c.get("constraint"), "time": int(r["time_min"]), "cpus_per_task": int(r["cpus"]),
            "mem": f"{round(r['mem_gb'] * 1024)}M", "gres": gpu if r["gpus"] else None,
            "array_parallelism": c.get("array_parallelism") or 256,
            # the worker runs inside submitit's python, so its allocator settings go in the job script
            "setup": [f"export GLIBC_TUNABLES={worker_environment(os.environ)['GLIBC_TUNABLES']}",
                      *(c.get("setup") or [])],
            "signal_delay_s": int(self.settings["signal_delay_s"]), "stderr_to_stdout": True,
            # srun of SLURM 22.05-23.02 does not inherit --cpus-per-task: the run would get one CPU
            "srun_args": [f"--cpus-per-task={int(r['cpus'])}"],
            # held until every run's status.json names its job; requeue allowed whatever the site default
            "additional_parameters": {"hold": True, "requeue": True, **(c.get("sbatch") or {})},
        }
        return {key: value for key, value in parameters.items() if value is not None}

    def submit(self, specs: list[RunSpec]) -> str:
        """Submit the runs as one held array, name each run's job in its status.json, release the array.

        Returns the array's job id; raises ConfigError with SLURM's message when it refuses the jobs.
        """
        try:
            import submitit
            from submitit.core.utils import FailedJobError
        except ImportError:
            raise ConfigError("launcher=slurm needs submitit: install the 'slurm' extra "
                              "(pip install 'dreamerbench[slurm]')") from None
        try:
            executor = submitit.SlurmExecutor(folder=self.folder / "%j", python=self.cluster.get("python"))
            executor.update_parameters(**self.sbatch_parameters(f"{specs[0].suite}-{specs[0].agent}"))
            jobs = executor.map_array(run_task, [str(s.run_dir) for s in specs], [self.policy] * len(specs))
        except RuntimeError as error:  # no srun here (RuntimeError), or sbatch refused (FailedJobError)
            what = "sbatch refused the job array" if isinstance(error, FailedJobError) else "launcher=slurm"
            raise ConfigError(f"{what}: {error}") from None
        for spec, job in zip(specs, jobs):
            RunDir(spec.run_dir).update_status(slurm_job_id=job.job_id, slurm_log=str(job.paths.stdout))
        array = jobs[0].job_id.split("_")[0]
        release = subprocess.run(["scontrol", "release", array], capture_output=True, text=True, timeout=60)
        if release.returncode != 0:
            raise ConfigError(f"scontrol release {array} failed ({release.stderr.strip()}): the array is held; "
                              f"release it by hand or scancel {array}")
        return array

    def launch(self, specs: list[RunSpec]) -> int:
        specs = [dataclasses.replace(s, run_dir=s.run_dir.resolve()) for s in specs]
        queued = self.queued(specs)
        todo = [s for s in specs if s.run_dir not in queued]
        for run_dir, job in queued.items():
            print(f"{run_dir}: still queued as SLURM job {job}, not submitted again")
        for needs, group in self.arrays(todo).items():
            self.resources = dict(needs)
            self.policy = dataclasses.replace(self.policy, time_limit_s=self.resources["time_min"] * 60)
            try:
                array = self.submit(group)
            except ConfigError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            print(f"submitted {len(group)} runs as SLURM job {array} "
                  f"(partition {self.cluster.get('partition') or 'default'}, {self.describe()}); "
                  f"follow with: python -m harness.status {self.root}")
        return self.wait(specs) if self.settings["wait"] else 0

    def arrays(self, specs: list[RunSpec]) -> dict[tuple, list[RunSpec]]:
        """The runs by the resources they need: one array each (a grid over one agent's settings is one)."""
        groups: dict[tuple, list[RunSpec]] = {}
        for spec in specs:
            needs = tuple(resources({"cluster": self.cluster, "agent": spec.config["agent"]}).items())
            groups.setdefault(needs, []).append(spec)
        return groups

    def describe(self) -> str:
        r = self.resources
        return f"{r['gpus']} GPU, {r['cpus']} CPU, {r['mem_gb']} GB, {r['time_min']} min per run"

    def queued(self, specs: list[RunSpec]) -> dict[Path, str]:
        """Runs whose job from an earlier submission is still pending or running."""
        jobs = {s.run_dir: RunDir(s.run_dir).read_status().get("slurm_job_id") for s in specs}
        states = query_states(j for j in jobs.values() if j)
        return {d: f"{j} ({states[j]})" for d, j in jobs.items() if j and states[j] in ACTIVE}

    def outcome(self, spec: RunSpec, slurm_state: str) -> str | None:
        """'done', 'failed' or 'preempted' once the run's job has ended for good; None before."""
        run = RunDir(spec.run_dir)
        if slurm_state in ACTIVE or run.lock.holder_if_held() is not None:  # held: another job writes it
            return None
        status = run.read_status()
        if status.get("state") in ("done", "failed", "preempted"):
            return status["state"]
        run.update_status(state="failed", error=f"SLURM job {status.get('slurm_job_id')} ended as {slurm_state} "
                                                f"before the run finished (log: {status.get('slurm_log')})")
        return "failed"

    def wait(self, specs: list[RunSpec]) -> int:
        progress, outcomes = Progress(specs), {}
        try:
            while len(outcomes) < len(specs):
                jobs = {s: RunDir(s.run_dir).read_status().get("slurm_job_id") for s in specs}
                states = query_states(j for j in jobs.values() if j)
                for spec in specs:
                    if spec not in outcomes and (result := self.outcome(spec, states.get(jobs[spec], "unknown"))):
                        outcomes[spec] = result
                        self.report(spec, result, progress)
                running = [s for s in specs if s not in outcomes and states.get(jobs[s]) == "running"]
                progress.show(progress.line(running, outcomes))
                if len(outcomes) < len(specs):
                    time.sleep(self.settings["poll_s"])
        except KeyboardInterrupt:
            progress.message(f"stopped waiting; the jobs go on: python -m harness.status {self.root}")
            return 130
        if progress.tty:
            print()
        counts = {s: sum(o == s for o in outcomes.values()) for s in ("done", "failed", "preempted")}
        print(", ".join(f"{n} {s}" for s, n in counts.items()) + (" (rerun the command to resume)"
                                                                  if counts["preempted"] else ""))
        if counts["failed"]:
            return 1
        return EXIT_CODES["preempted"] if counts["preempted"] else 0

    @staticmethod
    def report(spec: RunSpec, outcome: str, progress: Progress) -> None:
        name = spec.name
        if outcome == "failed":
            status = RunDir(spec.run_dir).read_status()
            log = status.get("log") or status.get("slurm_log")
            progress.message(f"FAILED {name}: {status.get('error')}\n  log: {log}")
        else:
            progress.message(f"{outcome} {name}")
