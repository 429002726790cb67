"""What the SLURM launcher asks of the cluster: profiles, agent defaults, overrides, requeue rules and
the parsing of SLURM's job ids. No cluster needed."""

import pytest
from omegaconf import OmegaConf

from harness.plan import ConfigError, compose
from harness.slurm import RequeuePolicy, SlurmLauncher, _parse
from harness.worker import ALLOCATOR_TUNABLES


def launcher(*args: str) -> SlurmLauncher:
    cfg = OmegaConf.to_container(compose(["launcher=slurm", *args]), resolve=True)
    return SlurmLauncher(cfg["launcher"], cfg)


def test_example_profile_with_overrides_becomes_sbatch_options(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    params = launcher("cluster=example", "cluster.gpus=2", "cluster.gpu_type=a100", "cluster.account=proj42",
                      "+cluster.sbatch.exclude='node[01-02]'").sbatch_parameters("atari26-dreamerv3")
    assert params["partition"] == "gpu" and params["account"] == "proj42" and params["time"] == 1440
    assert params["gres"] == "gpu:a100:2" and params["array_parallelism"] == 64
    allocator, *site = params["setup"]  # the workers' allocator settings first (harness.worker), then the profile's
    assert allocator == f"export GLIBC_TUNABLES={':'.join(ALLOCATOR_TUNABLES)}"
    assert site == ["module load cuda/12.4", "export XLA_PYTHON_CLIENT_MEM_FRACTION=0.9"]
    assert params["signal_delay_s"] == 600 and params["job_name"] == "atari26-dreamerv3"
    assert params["additional_parameters"] == {"hold": True, "requeue": True, "exclude": "node[01-02]"}
    assert "qos" not in params and "constraint" not in params  # null fields are left to the site


def test_resources_come_from_the_agent_unless_the_profile_sets_them():
    random_agent = launcher("cluster=local", "agent=random")
    assert random_agent.resources == {"gpus": 0, "cpus": 1, "mem_gb": 2, "time_min": 60}
    params = random_agent.sbatch_parameters("x")
    assert "gres" not in params and params["cpus_per_task"] == 1 and params["mem"] == "2048M"
    assert params["srun_args"] == ["--cpus-per-task=1"]  # srun of SLURM 22.05 does not inherit it
    assert launcher("cluster=local", "cluster.cpus=6", "cluster.mem_gb=1.5").resources | {} == {
        "gpus": 0, "cpus": 6, "mem_gb": 1.5, "time_min": 60}


def test_bad_settings_are_refused_with_the_valid_choices():
    with pytest.raises(ConfigError, match="cluster=<name>, one of example, local"):
        launcher()  # cluster=none
    with pytest.raises(ConfigError, match="signal_delay_s=600 must be between 0 and the time limit"):
        launcher("cluster=local", "cluster.time_min=1")
    with pytest.raises(ConfigError, match="'cluster.cpus': 0"):
        launcher("cluster=local", "cluster.cpus=0")
    with pytest.raises(ConfigError, match="unknown key 'cluster.gpu'"):
        compose(["launcher=slurm", "cluster=local", "cluster.gpu=1"])


def test_requeue_policy_bounds_requeues_and_can_refuse_timeouts():
    policy = RequeuePolicy(max_requeues=2, requeue_on_timeout=False, time_limit_s=3600, signal_delay_s=120)
    assert policy.refusal(restarts=1, elapsed_s=600) is None  # preempted early: requeue
    assert "max_requeues=2" in policy.refusal(restarts=2, elapsed_s=600)
    assert "time limit" in policy.refusal(restarts=0, elapsed_s=3480)  # signalled 120 s before the limit
    assert RequeuePolicy(2, True, 3600, 120).refusal(restarts=0, elapsed_s=3480) is None


def test_job_states_of_arrays_pending_ranges_and_requeues():
    output = "7_[3-5%2]|PENDING\n7_0|RUNNING\n7_1|CANCELLED by 0\n8|COMPLETED\n7_[8,10]|PENDING\n"
    assert _parse(output) == {"7_3": "pending", "7_4": "pending", "7_5": "pending", "7_0": "running",
                              "7_1": "cancelled", "8": "completed", "7_8": "pending", "7_10": "pending"}


def test_gpus_follow_the_dreamer_devices_and_a_profile_with_fewer_is_refused():
    dreamer = ("cluster=local", "agent=dreamerv3")
    assert launcher(*dreamer).resources["gpus"] == 1  # devices {train: 1, policy: same}
    four = launcher(*dreamer, "agent.devices.train=4")
    assert four.resources["gpus"] == 4 and four.sbatch_parameters("x")["gres"] == "gpu:4"
    assert launcher(*dreamer, "agent.devices.train=2", "agent.devices.policy=last").resources["gpus"] == 3
    assert launcher(*dreamer, "agent.devices.train=2", "cluster.gpus=4").resources["gpus"] == 4  # more may idle
    assert launcher(*dreamer, "cluster.gpus=0").resources["gpus"] == 0  # one train device: the CPU will do
    with pytest.raises(ConfigError, match=r"cluster.gpus=2 is fewer GPUs than agent.devices asks for: 3 "
                                          r"\(train 2 \+ 1 for the policy\); set cluster.gpus=3 or leave it null"):
        launcher(*dreamer, "agent.devices.train=2", "agent.devices.policy=last", "cluster.gpus=2")
    with pytest.raises(ConfigError, match="agent.devices.train=2 needs as many GPUs, but cluster.gpus=0 runs on"):
        launcher(*dreamer, "agent.devices.train=2", "cluster.gpus=0")
