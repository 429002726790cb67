"""`--plan`'s needs of Dreamer jobs: replay bytes per agent step against what a real agent stores from a real
env, the replay's RAM and disk, the checkpoint, and the memory warnings (local machine, SLURM profile)."""

import math

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from agents.dreamer import config as dreamer_config
from agents.dreamer import footprint as dreamer_footprint
from agents.dreamer.agent import DreamerAgent
from agents.dreamer.learner import Learner
from harness import loop, needs, run
from harness.launch import format_duration
from harness.plan import compose
from suites.base import Suite


def agent_and_suite(*args: str) -> tuple[dict, Suite]:
    cfg = compose(list(args))
    return OmegaConf.to_container(cfg.agent, resolve=True), Suite.from_config(OmegaConf.to_container(cfg.suite))


def test_bytes_per_step_are_what_a_real_agent_stores_from_a_real_env(monkeypatch):
    """DreamerAgent.observe on CartPole in two envs: the arrays it hands the replay, per agent step."""
    agent_config, suite = agent_and_suite("suite=classic", "agent=dreamerv3", "agent.envs=2")
    envs = loop.make_vector_env(suite, "CartPole-v1", "train", [0, 1], parallel=False)
    agent = DreamerAgent(agent_config, envs.single_observation_space, envs.single_action_space, 2, seed=0)
    stored = []
    monkeypatch.setattr(agent.replay, "add", stored.append)
    obs, _ = envs.reset(seed=[0, 1])
    step, state = loop.first_step(obs, 2), None
    for _ in range(3):
        action, state = agent.act(step, state, "train")
        agent.observe({**step, "action": action})
        obs, reward, terminated, truncated, _ = envs.step(action)
        step = loop.next_step(obs, reward, terminated, truncated, step)
    envs.close()
    assert len(stored) == 3
    expected = dreamer_footprint.step_arrays(agent_config, envs.single_observation_space, envs.single_action_space)
    fp = dreamer_footprint.footprint(agent_config, envs.single_observation_space, envs.single_action_space)
    for entry in stored:
        assert {k: (v.shape[1:], v.dtype) for k, v in entry.items()} == expected
        assert sum(v.nbytes for v in entry.values()) / 2 == fp.step_bytes  # per agent step: one env's step
    # state 4 float32, reward, three flags, one-hot action of 2, deter 512 and stoch 32 x 4 (size 1m)
    assert fp.step_bytes == 4 * 4 + 4 + 3 + 2 * 4 + 512 * 4 + 32 * 4 * 4 == 2591
    assert fp.latent_bytes == 512 * 4 + 32 * 4 * 4


@pytest.mark.parametrize("suite_name, task, expected", [
    # image 96x96 gray uint8, reward, flags, 18 actions, deter 8192 and stoch 32 x 64 (size 200m)
    ("atari57", "pong", 96 * 96 + 4 + 3 + 18 * 4 + 8192 * 4 + 32 * 64 * 4),
    # image 64x64 RGB, 6 actions, deter 2048 and stoch 32 x 16 (size 12m)
    ("dmc_vision", "walker_walk", 64 * 64 * 3 + 4 + 3 + 6 * 4 + 2048 * 4 + 32 * 16 * 4),
])
def test_bytes_per_step_at_the_suites_configs(suite_name, task, expected):
    """The suite's own Dreamer config: arrays built from a real observation, the loop's flags, the policy's
    action and the learner's initial latent, as `observe` stores them (no agent: 200m is too large to build)."""
    agent_config, suite = agent_and_suite(f"suite={suite_name}", "agent=dreamerv3")
    try:
        env = suite.make_env(task, seed=0)
    except Exception as error:  # an optional suite that is not installed here
        pytest.skip(f"{suite_name} env: {error}")
    obs, _ = env.reset(seed=0)
    learner = Learner(dreamer_config.resolve(agent_config), env.observation_space, env.action_space)
    batch = {k: np.asarray(v)[None] for k, v in obs.items()}
    entry = {k: batch[k] for k in learner.spec} | loop.first_step({}, 1)
    entry["action"] = np.zeros((1, learner.policy.act_dim), np.float32)
    entry |= {k: np.asarray(v, np.float32) for k, v in learner.initial_carry(1).items() if k in ("deter", "stoch")}
    fp = dreamer_footprint.footprint(agent_config, env.observation_space, env.action_space)
    assert sum(v.nbytes for v in entry.values()) == fp.step_bytes == expected


def test_replay_ram_and_disk_per_store():
    """Chunks at capacity: ceil(cap / chunk) plus the one just opened; the disk store keeps one chunk in RAM."""
    fp = dreamer_footprint.Footprint(step_bytes=100, latent_bytes=60, params=1, param_bytes=4, state_bytes=12)
    config = {"envs": 4, "batch_length": 64, "replay": {"capacity": 10_000, "chunk": 1024, "store": "memory"}}
    short = dreamer_footprint.replay_needs(config, fp, budget=5_000)  # 1,250 steps per stream: two chunks
    assert (short.steps, short.ram, short.disk) == (2 * 4096, 2 * 4096 * 100, 3 * 4096 * 100)
    full = dreamer_footprint.replay_needs(config, fp, budget=10**6)  # 2,500 steps per stream at capacity
    assert full.steps == (math.ceil(2500 / 1024) + 1) * 4096 and full.ram == full.steps * 100
    config["replay"]["store"] = "disk"
    disk = dreamer_footprint.replay_needs(config, fp, budget=10**6)
    assert disk.ram == 4096 * 100 and disk.disk == full.disk + full.steps * 60
    assert (full.checkpoint_bytes_per_step, disk.checkpoint_bytes_per_step) == (100, 60)


def plan(capsys, *args: str) -> list[str]:
    assert run.main([*args, "root=unused", "--plan"]) == 0
    return capsys.readouterr().out.splitlines()


ATARI57 = 96 * 96 + 4 + 3 + 18 * 4 + 8192 * 4 + 32 * 64 * 4  # 50,255 B per agent step (pong and most games)
ATARI57_STEPS = (math.ceil(5_000_000 // 16 / 1024) + 1) * 1024 * 16  # chunks of 16 envs x 1,024 steps


def test_atari57_plan_prints_replay_ram_disk_and_a_warning(capsys, monkeypatch):
    monkeypatch.setattr(needs, "physical_memory", lambda: 64 * 2**30)
    lines = plan(capsys, "suite=atari57", "agent=dreamerv3")
    at = lines.index("needs of dreamerv3 on atari57, all 57 tasks (57 runs), per run:")
    replay, memory, checkpoint, warning = lines[at + 1:at + 5]
    assert f"-{ATARI57:,} B per agent step by task" in replay and f"{ATARI57_STEPS:,} steps at its largest" in replay
    ram = needs.format_bytes(ATARI57_STEPS * ATARI57)
    assert memory == (f"  replay RAM: {ram} at its peak (store=memory); disk: "
                      f"{needs.format_bytes((ATARI57_STEPS + 16 * 1024) * ATARI57)}")
    assert ram == "235 GiB"
    assert checkpoint.startswith("  checkpoint: 2.14 GiB of parameters (187M, 713 MiB) and optimiser state")
    assert warning.startswith(f"  WARNING: the replay needs {ram} of RAM, more than this machine's 64 GiB: "
                              "use agent.replay.store=disk (RAM: one chunk, 785 MiB) or an agent.replay.capacity of at "
                              f"most {(64 * 2**30 // (16 * 1024 * ATARI57) - 1) * 16 * 1024:,} (the most that fits)")

    workers = plan(capsys, "suite=atari57", "task=pong,breakout", "agent=dreamerv3", "workers=4")
    assert "more than this machine's 64 GiB shared by 2 jobs at a time (workers=4), 32 GiB each" in "\n".join(workers)

    on_disk = plan(capsys, "suite=atari57", "agent=dreamerv3", "agent.replay.store=disk")
    assert not any("WARNING" in line for line in on_disk)
    assert (f"  replay RAM: 785 MiB at its peak (store=disk; the open chunk, the page cache not counted); disk: "
            f"{needs.format_bytes((ATARI57_STEPS + 16 * 1024) * ATARI57 + ATARI57_STEPS * 40960)} (with a frozen copy "
            "of the latents for the checkpoints)") in on_disk


def test_slurm_memory_warnings(capsys):
    """The profile's mem_gb, else the agent's default (Dreamer: 64 GiB), decides; 500k classic steps: 1.2 GiB."""
    classic = ("suite=classic", "agent=dreamerv3", "steps=500000", "launcher=slurm", "cluster=local")
    small = "\n".join(plan(capsys, *classic, "cluster.mem_gb=1"))
    assert "WARNING: the replay needs 1.21 GiB of RAM, more than the 1 GiB SLURM gives a run (cluster.mem_gb)" in small
    assert "WARNING" not in "\n".join(plan(capsys, *classic, "cluster.mem_gb=2"))
    atari = "\n".join(plan(capsys, "suite=atari57", "task=pong", "agent=dreamerv3", "launcher=slurm", "cluster=local"))
    assert ("more than the 64 GiB SLURM gives a run (cluster.mem_gb null: the agent's default agent.slurm.mem_gb)"
            in atari)


def test_an_env_that_cannot_be_built_leaves_its_needs_unknown(capsys, monkeypatch):
    def no_rom(self, task, seed, mode="train"):
        raise ValueError(f"no ALE ROM named '{task}'")

    monkeypatch.setattr(needs, "_SPACES", {})
    monkeypatch.setattr(Suite, "make_env", no_rom)
    lines = plan(capsys, "suite=atari26", "task=pong", "agent=dreamerv3")
    assert ("needs of dreamerv3 on atari26, pong (1 run), per run: unknown, the env could not be built "
            "(ValueError: no ALE ROM named 'pong')") in lines


def test_an_agent_that_cannot_run_on_the_tasks_spaces_is_a_plan_error(capsys):
    """DreamerV2's strided codec decodes 64x64 frames; atari57 gives 96x96: the plan says so, not a traceback."""
    assert run.main(["suite=atari57", "task=pong", "agent=dreamerv2", "root=unused", "--plan"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: agent=dreamerv2 cannot run atari57 task pong: codec.image 'strided' (V1/V2) decodes 64x64 images "
        "only, got 96x96")


def test_a_measured_speed_gives_the_time_and_the_checkpoint_replay_data(capsys):
    speed = yaml.safe_load(needs.SPEEDS.read_text())["dreamerv3"]["cpu"]["classic"]
    lines = plan(capsys, "suite=classic", "task=CartPole-v1", "agent=dreamerv3")
    time = f"  time: {format_duration(100_000 / speed)} per run at {speed:g} agent steps/s (harness/speeds.yaml)"
    assert time in lines
    collected = f"collect at {speed:g} agent steps/s, {needs.format_bytes(speed * 600 * 2591)}"  # 2,591 B per step
    assert any(line.startswith("  checkpoint: ") and line.endswith(collected) for line in lines)


def test_no_needs_lines_for_agents_without_a_replay(capsys):
    assert not any(line.startswith("needs of") for line in plan(capsys, "suite=classic", "agent=ppo"))


def test_the_dreamer_loop_speed_leaves_out_the_steps_before_training_and_the_compilation():
    from agents.dreamer.bench import training_steps_per_second

    metrics = [{"agent_step": 1000, "fps/env": 900.0},  # before training
               {"agent_step": 1100, "train/updates": 25.0, "fps/env": 1.0},  # holds the compilation
               {"agent_step": 1160, "train/updates": 40.0, "fps/env": 6.0},  # 10 s
               {"agent_step": 1200, "train/updates": 50.0, "fps/env": 4.0}]  # 10 s
    assert training_steps_per_second(metrics) == (5.0, 100)
