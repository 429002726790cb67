"""launcher=slurm on a real one-node SLURM cluster: a plan as one job array, preemption and requeue,
failing tasks and jobs among finishing ones, and resubmission of finished, queued and stopped plans."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.rundir import RunDir
from harness.slurm import ACTIVE, query_states

pytestmark = pytest.mark.slurm

TASKS = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
BASE = ("suite=classic", "agent=random", "launcher=slurm", "cluster=local", "launcher.poll_s=0.3",
        "suite.protocol.eval_every=0", "suite.protocol.final_eval_episodes=3", "root=runs")
LONG = (*BASE, "task=CartPole-v1", "steps=100000", "run.log_every=1")  # 5-15 s of CartPole


def cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m harness.run|status args` as a user runs it (SLURM_CONF comes from the fixture)."""
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_until_running(run: RunDir) -> None:
    """Until the run's loop has run for a moment: its stop signals are then the loop's to handle."""
    wait_until(lambda: run.read_status()["state"] == "running", 120, "the run to start")
    time.sleep(0.3)  # some steps in, far from the end: 100k steps take 2.5 s even at 40k steps/s


def accounted_history(job: str) -> list[str] | None:
    """The job's states in SLURM's accounting, once it has recorded the end (slurmdbd lags slurmctld)."""
    history = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-o", "State", "-j", job],
                             capture_output=True, text=True, check=True).stdout.split()
    return history if history and history[-1] not in ("RUNNING", "PENDING", "REQUEUED") else None


def run_of(root: Path, task: str) -> RunDir:
    return RunDir(root / "runs/classic/random" / task / "seed0")


def check_record(run: RunDir, budget: int, sessions: int) -> dict:
    """Done, every episode once and in order, the final evaluation complete; returns meta.json."""
    status = json.loads(run.status.read_text())
    assert status["state"] == "done" and status["agent_step"] == budget, status
    scores = [json.loads(line) for line in run.scores.read_text().splitlines()]
    train = [s for s in scores if s["mode"] == "train"]
    steps = [s["step"] for s in train]
    assert steps == sorted(set(steps)), "duplicated or reordered episodes"
    assert len(train) == status["episodes"]
    # the episode in progress at each interruption is lost, nothing else: one gap per resume at most
    gaps = [b for a, b in zip(train, train[1:]) if b["step"] - a["step"] != b["episode/length"]]
    assert len(gaps) <= sessions - 1
    assert sum(s["final"] for s in scores) == 3
    meta = json.loads(run.meta.read_text())
    assert len(meta["sessions"]) == sessions
    for before, after in zip(meta["sessions"], meta["sessions"][1:]):
        assert 0 < after["start_step"] == before["end_step"] < budget
    return meta


@pytest.fixture(scope="module")
def finished_plan(slurm_cluster, tmp_path_factory):
    """Three classic tasks run as one array to the end (launcher.wait=true)."""
    root = tmp_path_factory.mktemp("plan")
    result = cli("harness.run", *BASE, "steps=2000", "launcher.wait=true", cwd=root)
    return root, result


def test_plan_runs_as_one_array_and_completes(finished_plan):
    root, result = finished_plan
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted 3 runs as SLURM job" in result.stdout and "3 done, 0 failed" in result.stdout
    jobs = {}
    for task in TASKS:
        run = run_of(root, task)
        meta = check_record(run, 2000, sessions=1)
        job = run.read_status()["slurm_job_id"]
        assert meta["slurm_job_ids"] == [job] and meta["sessions"][0]["slurm_job_id"] == job
        assert "=== SLURM job" in run.log.read_text()
        jobs[task] = job
    arrays = {job.split("_")[0] for job in jobs.values()}
    assert len(arrays) == 1 and sorted(job.split("_")[1] for job in jobs.values()) == ["0", "1", "2"]
    assert set(query_states(jobs.values()).values()) == {"completed"}

    status = cli("harness.status", "runs", cwd=root)
    assert status.returncode == 0, status.stdout + status.stderr
    for task, job in jobs.items():
        line = next(line for line in status.stdout.splitlines() if task in line)
        assert "done" in line and f"{job} completed" in line


def test_resubmitting_a_finished_plan_does_nothing(finished_plan):
    root, _ = finished_plan
    submitted = sorted((root / "runs/.slurm").iterdir())
    statuses = [run_of(root, task).status.read_text() for task in TASKS]
    result = cli("harness.run", *BASE, "steps=2000", "launcher.wait=true", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 finished runs skipped" in result.stdout and "runs as SLURM job" not in result.stdout
    assert sorted((root / "runs/.slurm").iterdir()) == submitted
    assert [run_of(root, task).status.read_text() for task in TASKS] == statuses


# How a running job gets stopped: SIGUSR2 as before a time limit, or a job of the higher-priority
# partition `urgent` that needs every CPU, which makes SLURM preempt (SIGTERM) and requeue the run.
STOPS = {"scancel --signal=USR2": lambda job: ["scancel", "--signal=USR2", job],
         "preempted by a job of a higher partition":
             lambda job: ["sbatch", "-p", "urgent", "-c", "2", "-o", "/dev/null", "--wrap", "true"]}


@pytest.mark.parametrize("stop", STOPS)
def test_stopped_task_checkpoints_requeues_and_resumes_in_place(slurm_cluster, tmp_path, stop):
    result = cli("harness.run", *LONG, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    run = run_of(tmp_path, "CartPole-v1")
    config = run.config.read_text()
    job = run.read_status()["slurm_job_id"]
    wait_until_running(run)
    subprocess.run(STOPS[stop](job), check=True, capture_output=True)
    wait_until(lambda: query_states([job])[job] == "completed", 180, "the requeued job to complete")

    meta = check_record(run, 100000, sessions=2)
    assert [s["slurm_job_id"] for s in meta["sessions"]] == [job, job] and meta["slurm_job_ids"] == [job]
    assert meta["command"].endswith(" ".join(LONG)) and run.config.read_text() == config
    assert len(list((tmp_path / "runs").rglob("config.yaml"))) == 1  # resumed in the same directory
    log = run.log.read_text()
    assert "start 1" in log and "start 2" in log
    assert wait_until(lambda: accounted_history(job), 60, "slurmdbd to record the job's end") == ["REQUEUED", "COMPLETED"]


def test_requeue_limit_stops_the_run_and_resubmission_resumes_it(slurm_cluster, tmp_path):
    result = cli("harness.run", *LONG, "launcher.max_requeues=0", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    run = run_of(tmp_path, "CartPole-v1")
    first = run.read_status()["slurm_job_id"]
    wait_until_running(run)
    subprocess.run(["scancel", "--signal=USR2", first], check=True)
    wait_until(lambda: query_states([first])[first] not in ACTIVE, 60, "the job to end")
    assert run.read_status()["state"] == "preempted" and query_states([first])[first] == "completed"
    assert "not requeued: requeued 0 times already (launcher.max_requeues=0)" in run.log.read_text()

    result = cli("harness.run", *LONG, "launcher.wait=true", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    second = run.read_status()["slurm_job_id"]
    assert second != first
    meta = check_record(run, 100000, sessions=2)
    assert meta["slurm_job_ids"] == [first, second]


def test_resubmitting_while_the_job_is_queued_submits_nothing(slurm_cluster, tmp_path):
    result = cli("harness.run", *LONG, "+cluster.sbatch.begin=now+600", cwd=tmp_path)  # pending for 10 min
    assert result.returncode == 0, result.stdout + result.stderr
    job = run_of(tmp_path, "CartPole-v1").read_status()["slurm_job_id"]
    try:
        again = cli("harness.run", *LONG, cwd=tmp_path)
        assert again.returncode == 0 and f"still queued as SLURM job {job} (pending)" in again.stdout, again.stdout
        assert "runs as SLURM job" not in again.stdout
        shown = cli("harness.status", "runs", cwd=tmp_path)
        assert f"pending  {job} pending" in shown.stdout, shown.stdout
    finally:
        subprocess.run(["scancel", job], check=True)


def test_failing_task_is_reported_failed_while_the_others_finish(slurm_cluster, tmp_path):
    broken = run_of(tmp_path, "Acrobot-v1")
    broken.path.mkdir(parents=True)
    broken.checkpoints.write_text("a file where the checkpoint directory belongs")  # a corrupt run directory
    result = cli("harness.run", *BASE, "steps=2000", "launcher.wait=true", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    status = broken.read_status()
    assert status["state"] == "failed" and status["error"] and "Traceback" in broken.log.read_text()
    assert f"FAILED classic/random/Acrobot-v1/seed0: {status['error']}\n  log: {broken.log}" in result.stdout
    assert "2 done, 1 failed" in result.stdout
    jobs = {task: run_of(tmp_path, task).read_status()["slurm_job_id"] for task in TASKS}
    states = query_states(jobs.values())
    assert {task: states[job] for task, job in jobs.items()} == {
        "CartPole-v1": "completed", "Acrobot-v1": "failed", "Pendulum-v1": "completed"}
    for task in ("CartPole-v1", "Pendulum-v1"):
        check_record(run_of(tmp_path, task), 2000, sessions=1)

    shown = cli("harness.status", "runs", cwd=tmp_path)
    assert shown.returncode == 1
    line = next(line for line in shown.stdout.splitlines() if "Acrobot" in line)
    assert "failed" in line and f"{jobs['Acrobot-v1']} failed" in line and f"(log: {broken.log})" in line


def test_a_job_array_slurm_refuses_is_an_error_naming_the_reason(slurm_cluster, tmp_path):
    result = cli("harness.run", *BASE, "steps=1000", "cluster.partition=nosuchpartition", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: sbatch refused the job array" in result.stderr and "invalid partition" in result.stderr.lower()


def test_a_job_that_dies_before_its_run_starts_is_reported_with_its_log(slurm_cluster, tmp_path):
    result = cli("harness.run", *BASE, "task=CartPole-v1", "steps=1000", "cluster.setup=['exit 7']",
                 "launcher.wait=true", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    status = run_of(tmp_path, "CartPole-v1").read_status()
    job, log = status["slurm_job_id"], status["slurm_log"]
    assert status["state"] == "failed" and status["error"] == (
        f"SLURM job {job} ended as failed before the run finished (log: {log})")
    assert f"FAILED classic/random/CartPole-v1/seed0: SLURM job {job} ended as failed" in result.stdout


@pytest.mark.slow
def test_time_limit_checkpoints_requeues_and_finishes(slurm_cluster, tmp_path):
    """A run longer than its job's time limit (1 min) is signalled 40 s before it, requeued, and finishes."""
    steps = 1_500_000  # 1.5-3 min of CartPole: several job lengths
    result = cli("harness.run", *BASE, "task=CartPole-v1", f"steps={steps}", "cluster.time_min=1",
                 "launcher.signal_delay_s=40", "launcher.wait=true", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    run = run_of(tmp_path, "CartPole-v1")
    sessions = len(json.loads(run.meta.read_text())["sessions"])
    assert sessions >= 2
    check_record(run, steps, sessions)
    job = run.read_status()["slurm_job_id"]
    history = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-o", "State", "-j", job],
                             capture_output=True, text=True, check=True).stdout.split()
    assert history == ["REQUEUED"] * (sessions - 1) + ["COMPLETED"]  # never killed at the limit (TIMEOUT)


def test_two_submissions_at_once_never_write_the_run_together(slurm_cluster, tmp_path):
    """Two terminals submit the same plan at once: at most one job writes the run, the other leaves it."""
    submissions = [subprocess.Popen([sys.executable, "-m", "harness.run", *LONG], cwd=tmp_path, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [p.communicate(timeout=180)[0] for p in submissions]
    assert all(p.returncode in (0, 3) for p in submissions), outputs
    run = run_of(tmp_path, "CartPole-v1")
    wait_until(lambda: run.read_status()["state"] == "done", 180, "the run to finish")
    started = re.findall(r"=== SLURM job (\S+) on", run.log.read_text())  # every task that ran, in order
    assert 1 <= len(started) <= 2 and sum("submitted 1 runs" in out for out in outputs) == len(started), outputs
    wait_until(lambda: set(query_states(started).values()) == {"completed"}, 180, "every job to complete")
    meta = check_record(run, 100000, sessions=1)  # one session: the loop ran once, in one job
    writer = run.read_status()["slurm_job_id"]
    assert meta["slurm_job_ids"] == [writer] and writer in started
    if len(started) == 2:  # both were submitted: the second task waited for the lock, then found the run done
        assert "=== the run was finished by the holder of its lock" in run.log.read_text()


def test_a_local_launch_leaves_a_run_held_by_a_slurm_job_alone(slurm_cluster, tmp_path):
    longer = (*BASE, "task=CartPole-v1", "steps=600000", "run.log_every=1")  # 15-30 s: time to try
    result = cli("harness.run", *longer, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    run = run_of(tmp_path, "CartPole-v1")
    job = run.read_status()["slurm_job_id"]
    wait_until_running(run)
    local = [a for a in longer if not a.startswith(("launcher", "cluster"))]
    plan = cli("harness.run", *local, "--plan", cwd=tmp_path)
    assert "running elsewhere" in plan.stdout and "1 running elsewhere" in plan.stdout, plan.stdout
    again = cli("harness.run", *local, cwd=tmp_path)
    assert again.returncode == 3 and "running elsewhere" in again.stdout and f"SLURM job {job}" in again.stdout
    shown = cli("harness.status", "runs", cwd=tmp_path)
    assert "running" in shown.stdout and "holder" in shown.stdout, shown.stdout
    wait_until(lambda: query_states([job])[job] == "completed", 180, "the job to complete")
    check_record(run, 600000, sessions=1)
