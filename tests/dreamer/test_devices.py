"""Training across several devices (`agent.devices`, agents/dreamer/devices.py) on simulated CPU devices.

The multi-device checks run in one subprocess with 4 simulated devices (devices_side.py: XLA reads the count
before jax starts, and this process's jax has started with one); this module asserts on its figures.

Tolerances. The same update on 1, 2 and 4 devices computes the same sums in another order (per-device partial
sums, then the all-reduce), so results differ by float32 rounding: a few ulp per operation, grown through the
loss's depth. Measured (2 shared CPU cores, jax 0.10.2): loss within 4e-6 absolute (2e-7 of 19), metrics
within 1.3e-6 relative, return percentiles within 1.8e-6 relative, parameters within 1.2e-7 absolute after
3 updates at lr 1e-3 (each update moves them by about 1e-3), and 6e-8 between the continuations of one
checkpoint after 12 updates. The bounds sit about 10x above: a mistake that matters (a gradient not reduced,
a statistic over part of the batch) moves parameters by up to the learning rate, 1e3 times the bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.dreamer import config as dreamer_config
from agents.dreamer import devices

sys.path.insert(0, str(Path(__file__).parent))
from test_dreamer_agent import tiny_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("devices_side.py")),
                             str(tmp_path_factory.mktemp("checkpoint"))],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("n", ["2", "4"])
def test_updates_on_n_devices_equal_those_on_one_to_rounding(figures, n):
    assert figures["local_devices"] == 4
    assert figures["equality"]["ret_range"] > 1e-3  # the return percentiles saw a spread to reduce
    for when in ("first", "last"):
        diff = figures["equality"][n][when]
        assert diff["loss_abs"] <= 2e-6 * diff["loss"], when
        assert diff["metrics_rel"] <= 1e-5, when
        assert diff["params"]["abs"] <= 1e-6 and diff["moved"] >= 5e-4, when
        assert diff["retnorm"]["rel"] <= 2e-5, when


def test_the_state_is_replicated_and_the_batch_split(figures):
    for n, placed in figures["equality"]["placed"].items():
        assert placed["train_devices"] == list(range(int(n)))
        assert placed["state_replicated"] and placed["latents_split"], n


def test_a_checkpoint_of_4_devices_resumes_on_1_and_2(figures):
    ckpt = figures["checkpoints"]
    assert ckpt["saved_updates"] >= 5 and ckpt["updates"] > ckpt["saved_updates"]
    for n in ("1", "2"):
        resumed = ckpt[n]
        assert resumed["loaded_equal"] and resumed["loaded_replicated"], n
        assert resumed["updates"] == ckpt["updates"], n
        # 12 updates later the continuations still agree to rounding (devices_side.conditioned says why the
        # heads are set so: fresh zero heads make the rounding grow to the learning rate per update).
        assert resumed["params"]["abs"] <= 1e-6, n


def test_a_policy_on_its_own_device_acts_on_current_parameters(figures):
    policy = figures["policy"]
    assert policy["train_devices"] == [0, 1] and policy["policy_devices"] == [3] and policy["carry_devices"] == [3]
    assert policy["updates"] >= 3 and policy["copy_is_current"] and 0 <= policy["action"] < 3


def test_settings_that_cannot_work_are_refused_clearly():
    with pytest.raises(ValueError, match="agent.batch_size 4 does not divide by agent.devices.train 3"):
        dreamer_config.validate(tiny_config(devices={"train": 3, "policy": "same"}))
    with pytest.raises(ValueError, match="unknown agent.devices.policy 'first'; valid: same, last"):
        dreamer_config.validate(tiny_config(devices={"train": 1, "policy": "first"}))
    with pytest.raises(ValueError, match="agent.devices.train must be a number of devices >= 1, got 0"):
        dreamer_config.validate(tiny_config(devices={"train": 0, "policy": "same"}))
    with pytest.raises(ValueError, match=r"agent.devices.train=64 asks for more devices than this process has: "
                                         r"\d+ local cpu device"):
        devices.place({"train": 64, "policy": "same"})
