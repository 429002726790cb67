"""Grids on the command line: expansion, variant directories, shared points, resume per variant, W&B."""

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from harness.plan import ConfigError
from harness.rundir import RunDir
from harness.run import plan_grid
from harness.sweep import expand
from test_resume import wait_for_progress  # tests/harness is on sys.path (pytest's rootdir import mode)

TINY = ("suite=classic", "task=CartPole-v1", "steps=600", "suite.protocol.eval_every=0",
        "suite.protocol.final_eval_episodes=2", "root=r")


def test_lists_expand_to_the_product_in_command_line_order():
    points = expand(["agent=ppo,random", "agent.envs=range(1,4)", "task=CartPole-v1,Acrobot-v1", "seeds=2"])
    assert [p.args[:2] for p in points] == [(f"agent={a}", f"agent.envs={e}") for a in ("ppo", "random")
                                            for e in (1, 2, 3)]
    assert all(p.args[2:] == ("task=CartPole-v1,Acrobot-v1", "seeds=2") for p in points)  # a task list is no grid
    assert points[0].varying == ("agent.envs",)  # the agent is in the path already
    assert expand(["agent.hidden=[64,64]", "x=\"a,b\""]) == expand(["agent.hidden=[64,64]", "x=\"a,b\""])[:1]


@pytest.mark.parametrize("arg, message", [("name=a,b", "name= takes one value"),
                                          ("launcher=local,slurm", "launcher= takes one value"),
                                          ("agent.envs=range(1,", r"cannot parse .agent.envs=range\(1,.")])
def test_lists_where_one_value_belongs_are_refused(arg, message):
    with pytest.raises(ConfigError, match=message):
        expand([arg])


def test_variant_directories_are_named_from_the_resolved_varying_keys(tmp_path):
    specs, _ = plan_grid(["agent=ppo", "agent.discrete.lr=1e-3,0.0003", "agent.envs=2,4", "seeds=2", *TINY])
    names = {s.variant for s in specs}
    assert names == {f"discrete.lr={lr},envs={e}" for lr in ("0.001", "0.0003") for e in (2, 4)}
    assert len(specs) == 8 and len({s.run_dir for s in specs}) == 8
    spec = next(s for s in specs if s.variant == "discrete.lr=0.001,envs=4" and s.seed == 1)
    assert str(spec.run_dir) == "r/classic/ppo/discrete.lr=0.001,envs=4/CartPole-v1/seed1"
    assert spec.config["variant"] == {"name": "discrete.lr=0.001,envs=4", "label": "ppo [discrete.lr=0.001, envs=4]",
                                      "settings": {"agent.discrete.lr": 0.001, "agent.envs": 4}}
    assert spec.config["agent"]["discrete"]["lr"] == 0.001 and spec.config["agent"]["envs"] == 4
    # the same point written otherwise, in another order, gets the same directory
    again, _ = plan_grid(["agent.envs=4,8", "agent=ppo", "agent.discrete.lr=0.001,1e-2", *TINY])
    assert spec.run_dir.parent in {s.run_dir.parent for s in again}

    plain, _ = plan_grid(["agent=ppo", "agent.discrete.lr=1e-3", *TINY])  # no list: today's layout
    assert str(plain[0].run_dir) == "r/classic/ppo/CartPole-v1/seed0" and "variant" not in plain[0].config
    named, _ = plan_grid(["agent=ppo", "agent.discrete.lr=1e-3", "name=fast", *TINY])
    assert str(named[0].run_dir) == "r/classic/ppo/fast/CartPole-v1/seed0"
    assert named[0].config["variant"]["label"] == "ppo [fast]"


def test_points_that_would_share_a_directory_with_other_settings_are_refused():
    with pytest.raises(ConfigError, match="two points of the grid would share r/classic/random/CartPole-v1/seed0"):
        plan_grid(["logger.tensorboard=true,false", *TINY])
    specs, _ = plan_grid(["seed=0,0", *TINY])  # the very same run twice is one run
    assert len(specs) == 1


def test_plan_shows_variants_budget_and_estimate(tmp_path, run_cli):
    result = run_cli("harness.run", "--plan", "agent=ppo", "agent.discrete.lr=1e-3,3e-4", "seeds=2", *TINY,
                     cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert "variant" in lines[0].split()
    assert sum("discrete.lr=0.0003" in line for line in lines) == 2
    assert "budget: 2,400 agent steps (2,400 env frames) in 4 runs" in result.stdout
    hours = 2400 / 729 / 3600  # harness/speeds.yaml: ppo on cpu, classic
    assert f"estimate: {hours:.3g} CPU hours" in result.stdout and "ppo cpu classic 729 steps/s" in result.stdout
    assert not (tmp_path / "r").exists()
    result = run_cli("harness.run", "--plan", "agent=dreamerv2", "agent.batch_size=8,16", *TINY, cwd=tmp_path)
    assert "no measured speed (harness/speeds.yaml) for dreamerv2 on cpu (classic)" in result.stdout


def test_two_grids_sharing_a_point_run_it_once(tmp_path, run_cli):
    first = run_cli("harness.run", "agent.envs=1,2", *TINY, "workers=2", cwd=tmp_path)
    assert "2 done, 0 failed" in first.stdout
    shared = RunDir(tmp_path / "r/classic/random/envs=2/CartPole-v1/seed0")
    assert shared.read_status()["state"] == "done"
    second = run_cli("harness.run", "agent.envs=2,3", *TINY, cwd=tmp_path)
    assert "1 finished runs skipped" in second.stdout and "1 done, 0 failed" in second.stdout
    assert len(json.loads(shared.meta.read_text())["sessions"]) == 1
    status = run_cli("harness.status", "r", cwd=tmp_path)
    assert [line.split()[0] for line in status.stdout.splitlines()[1:4]] == [
        f"classic/random/envs={e}/CartPole-v1/seed0" for e in (1, 2, 3)]


def test_a_stopped_variant_resumes_and_the_finished_one_is_skipped(tmp_path, run_cli):
    args = ("agent.envs=1,2", "suite=classic", "task=CartPole-v1", "steps=60000", "run.checkpoint_every=0.3",
            "suite.protocol.eval_every=0", "suite.protocol.final_eval_episodes=2", "root=r", "workers=2")
    launcher = subprocess.Popen([sys.executable, "-m", "harness.run", *args], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stopped = RunDir(tmp_path / "r/classic/random/envs=1/CartPole-v1/seed0")
    other = RunDir(tmp_path / "r/classic/random/envs=2/CartPole-v1/seed0")
    os.kill(wait_for_progress(stopped, 10000)["pid"], signal.SIGTERM)
    output, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 3, output
    assert "preempted classic/random/envs=1/CartPole-v1/seed0" in output
    assert stopped.read_status()["state"] == "preempted" and other.read_status()["state"] == "done"
    result = run_cli("harness.run", *args, cwd=tmp_path)
    assert "1 finished runs skipped" in result.stdout
    assert stopped.read_status()["state"] == "done" and stopped.read_status()["agent_step"] >= 60000
    assert len(json.loads(stopped.meta.read_text())["sessions"]) == 2
    assert len(json.loads(other.meta.read_text())["sessions"]) == 1


def test_wandb_offline_run_keeps_its_id_when_resumed(tmp_path, run_cli):
    pytest.importorskip("wandb", reason="the 'wandb' extra is not installed")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    args = ("agent.envs=1,2", "suite=classic", "task=CartPole-v1", "steps=20000", "run.checkpoint_every=0.3",
            "suite.protocol.eval_every=0", "suite.protocol.final_eval_episodes=2", "root=r", "logger.wandb=true",
            "logger.wandb_project=sweeptest")
    launcher = subprocess.Popen([sys.executable, "-m", "harness.run", *args], cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run = RunDir(tmp_path / "r/classic/random/envs=1/CartPole-v1/seed0")
    os.kill(wait_for_progress(run, 2000)["pid"], signal.SIGTERM)
    launcher.communicate(timeout=120)
    assert run.read_status()["state"] == "preempted"
    first = json.loads((run.path / "wandb.json").read_text())
    assert first["group"] == "classic/random/envs=1" and first["project"] == "sweeptest"
    subprocess.run([sys.executable, "-m", "harness.run", *args], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=300)
    assert json.loads((run.path / "wandb.json").read_text()) == first
    offline = sorted((run.path / ".wandb" / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(d.name.endswith(f"-{first['id']}") for d in offline)  # one W&B run, resumed
    record = (offline[0] / f"run-{first['id']}.wandb").read_bytes()
    for text in ("classic/random/envs=1", "CartPole-v1", "seed0", "sweeptest", "episode/train_score"):
        assert text.encode() in record, text  # group, tags, project and the metrics went to W&B
    other = json.loads((tmp_path / "r/classic/random/envs=2/CartPole-v1/seed0/wandb.json").read_text())
    assert other["id"] != first["id"]
    assert yaml.safe_load(run.config.read_text())["logger"]["wandb"] is True
