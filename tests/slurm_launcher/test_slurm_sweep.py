"""A grid on the real one-node SLURM cluster: one job array of every variant's runs, within the
profile's array_parallelism; a second grid that shares points submits only its new runs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.rundir import RunDir

pytestmark = pytest.mark.slurm

GRID = ("suite=classic", "agent=random", "task=CartPole-v1,Acrobot-v1", "steps=2000", "launcher=slurm",
        "cluster=local", "cluster.array_parallelism=2", "launcher.poll_s=0.3", "launcher.wait=true",
        "suite.protocol.eval_every=0", "suite.protocol.final_eval_episodes=2", "root=runs")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.run", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def array_specs(root: Path) -> list[str]:
    """The --array lines of the sbatch scripts submitit wrote, in submission order."""
    scripts = sorted((root / "runs/.slurm").glob("*/*_submission.sh"), key=lambda p: p.stat().st_mtime)
    return [m for s in scripts for m in re.findall(r"#SBATCH --array=(\S+)", s.read_text())]


def test_a_grid_goes_out_as_one_array_and_a_shared_point_runs_once(slurm_cluster, tmp_path):
    result = cli(*GRID, "agent.envs=1,2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted 4 runs as SLURM job" in result.stdout and "4 done, 0 failed" in result.stdout
    assert array_specs(tmp_path) == ["0-3%2"]  # four runs, two at a time (cluster.array_parallelism)
    jobs = {}
    for envs in (1, 2):
        for task in ("CartPole-v1", "Acrobot-v1"):
            run = RunDir(tmp_path / f"runs/classic/random/envs={envs}/{task}/seed0")
            status = run.read_status()
            assert status["state"] == "done" and status["agent_step"] >= 2000
            jobs[(envs, task)] = status["slurm_job_id"]
    assert len({job.split("_")[0] for job in jobs.values()}) == 1
    assert sorted(job.split("_")[1] for job in jobs.values()) == ["0", "1", "2", "3"]

    again = cli(*GRID, "agent.envs=2,3", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 finished runs skipped" in again.stdout and "submitted 2 runs as SLURM job" in again.stdout
    assert array_specs(tmp_path) == ["0-3%2", "0-1%2"]
    for task in ("CartPole-v1", "Acrobot-v1"):  # the shared point kept its run and its job
        assert RunDir(tmp_path / f"runs/classic/random/envs=2/{task}/seed0").read_status()["slurm_job_id"] == \
            jobs[(2, task)]
        assert RunDir(tmp_path / f"runs/classic/random/envs=3/{task}/seed0").read_status()["state"] == "done"
