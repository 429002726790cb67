"""A grid under launcher=slurm: one job array of every variant's runs (one per set of resources), within
the profile's array_parallelism, on the real one-node cluster; a second grid that shares points
submits only its new runs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.run import plan_grid
from harness.rundir import RunDir
from harness.slurm import SlurmLauncher

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


def arrays(*args: str) -> list[tuple[dict, list[str]]]:
    """The arrays SlurmLauncher would submit for a command line: (resources, run directories) each."""
    specs, cfg = plan_grid(["suite=classic", "task=CartPole-v1", "launcher=slurm", "cluster=local", *args])
    launcher = SlurmLauncher(OmegaConf.to_container(cfg.launcher, resolve=True), OmegaConf.to_container(cfg, resolve=True))
    return [(dict(needs), [str(s.run_dir) for s in group]) for needs, group in launcher.arrays(specs).items()]


def test_one_array_per_set_of_resources():
    (needs, runs), = arrays("agent=ppo", "agent.discrete.lr=1e-3,3e-4", "seeds=2")
    assert len(runs) == 4 and needs == {"gpus": 0, "cpus": 8, "mem_gb": 16, "time_min": 60}  # ppo's slurm block
    by_agent = arrays("agent=ppo,random", "agent.envs=1,2")
    assert [(n["cpus"], n["mem_gb"], len(r)) for n, r in by_agent] == [(8, 16, 2), (1, 2, 2)]
    assert all("/ppo/" in run for run in by_agent[0][1]) and all("/random/" in run for run in by_agent[1][1])
    (needs, runs), = arrays("agent=ppo,random", "agent.envs=1,2", "cluster.cpus=2", "cluster.mem_gb=4")
    assert len(runs) == 4 and (needs["cpus"], needs["mem_gb"]) == (2, 4)  # the profile fixes them: one array


@pytest.mark.slurm
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
