"""`harness.bench --against sheeprl`, for real on a tiny point (marker `peers`: needs .venv-sheeprl, made
by `python -m harness.peers setup sheeprl` or by this test)."""

import pytest

from harness import peers

pytestmark = pytest.mark.peers
TINY = {"name": "dmc_1m", "task": "dmc_cartpole", "size": "1m", "batch": 2, "length": 8, "dtype": "float32",
        "warmup": 0, "warmup_policy": 1}


def test_ours_and_sheeprl_are_timed_in_turn(tmp_path):
    pythons = {side: peers.side_python(side, install=True) for side in ("ours", "sheeprl")}
    results = peers.run_point(TINY, pythons, rounds=2, per_round=1, policy_per_round=2, logs=tmp_path)
    for side in pythons:
        assert len(results[side].update_s) == 2 and len(results[side].policy_s) == 4
        assert 0.1 < results[side].peak_rss_gb < 8
    assert results["sheeprl"].info["version"].startswith("sheeprl 0.8.4, torch 2.13.0")
    assert results["sheeprl"].info["dtype"] == "32-true"
