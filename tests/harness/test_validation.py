"""Bad command lines get a clear error naming the key and the valid choices, and write nothing."""

import pytest

CASES = [
    (["suite=nosuch"], "unknown suite 'nosuch'; valid suites: ", "classic"),
    (["agent=nosuch"], "unknown agent 'nosuch'; valid agents: ", "random"),
    (["launcher=nosuch"], "unknown launcher 'nosuch'; valid launchers: ", "local"),
    (["cluster=nosuch"], "unknown cluster 'nosuch'; valid clusters: ", "none"),
    (["task=Pong"], "unknown task 'Pong' for suite 'classic'; valid tasks: ", "CartPole-v1, Acrobot-v1, Pendulum-v1"),
    (["nosuchkey=1"], "unknown key 'nosuchkey'; valid keys there: ", "seeds"),
    (["agent.nosuch=1"], "unknown key 'agent.nosuch'; valid keys there: ", "agent.envs"),
    (["suite.protocol.nosuch=1"], "unknown key 'suite.protocol.nosuch'", "suite.protocol.budget"),
    (["seeds=0"], "invalid value for 'seeds': 0", "integer >= 1"),
    (["steps=abc"], "invalid value for 'steps': 'abc'", "integer >= 1"),
    (["workers=-2"], "invalid value for 'workers': -2", "integer >= 1"),
    (["agent.envs=0"], "invalid value for 'agent.envs': 0", "integer >= 1"),
    (["run.checkpoint_every=0"], "invalid value for 'run.checkpoint_every': 0", "seconds > 0"),
    (["run.parallel_envs=maybe"], "invalid value for 'run.parallel_envs'", "auto, true or false"),
    (["force=yes"], "invalid value for 'force'", "true or false"),
    (["suite"], "expected key=value, got 'suite'", "--help"),
    (["launcher=slurm"], "launcher=slurm needs a cluster profile: cluster=<name>", "local"),
]


@pytest.mark.parametrize("args,message,valid", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_invalid_command_line_is_explained_and_writes_nothing(tmp_path, run_cli, args, message, valid):
    result = run_cli("harness.run", *args, "root=out", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert message in result.stderr and valid in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_plan_lists_jobs_and_writes_nothing(tmp_path, run_cli):
    result = run_cli("harness.run", "suite=classic", "seeds=2", "steps=5000", "--plan", "root=out", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["suite", "task", "agent", "seed", "run"]
    jobs = [line.split() for line in lines[1:-3]]
    assert [(j[1], j[3]) for j in jobs] == [(t, s) for t in ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
                                            for s in ("0", "1")]
    assert all(j[4] == f"out/classic/random/{j[1]}/seed{j[3]}" and j[5] == "5,000" for j in jobs)
    assert lines[-3] == "6 jobs: 6 new, 0 resume, 0 restart, 0 skip"
    assert lines[-2] == "budget: 30,000 agent steps (30,000 env frames) in 6 runs"
    assert lines[-1].startswith(f"estimate: {30000 / 35000 / 3600:.3g} CPU hours")  # random on cpu, speeds.yaml
    assert list(tmp_path.iterdir()) == []


def test_help_lists_suites_agents_and_launchers(tmp_path, run_cli):
    result = run_cli("harness.run", "--help", cwd=tmp_path)
    assert "suite=NAME      one of: " in result.stdout and "classic" in result.stdout
    assert "agent=NAME      one of: " in result.stdout and "random" in result.stdout
    assert "launcher=NAME   one of: " in result.stdout and "local" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_missing_optional_package_names_the_extra_and_writes_nothing(tmp_path, run_cli):
    """MineRL cannot be installed on these machines: the real missing-dependency path."""
    result = run_cli("harness.run", "suite=minecraft", "agent=random", "root=out", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "install the 'minecraft' extra" in result.stderr and "Java 8" in result.stderr
    assert list(tmp_path.iterdir()) == []
